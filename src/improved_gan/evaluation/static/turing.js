// Visual Turing test: answer with buttons or keys without reloading the page. Plain JS, no build step.
// Without JavaScript the form posts and the server redirects to the next image.
(() => {
  "use strict";
  const form = document.getElementById("answer-form");
  if (!form) return;
  const img = document.getElementById("sample");
  const trial = document.getElementById("trial");
  const clientMs = document.getElementById("client-ms");
  const feedback = document.getElementById("feedback");
  const message = document.getElementById("message");
  const position = document.getElementById("position");
  const buttons = Array.from(form.querySelectorAll("button[name=answer]"));
  const delay = Number(form.dataset.feedbackDelay || 900);
  const keys = { r: "real", arrowleft: "real", g: "fake", f: "fake", arrowright: "fake" };
  let shownAt = null;
  let busy = true;

  function setBusy(value) {
    busy = value;
    buttons.forEach((b) => { b.disabled = value; });
    form.setAttribute("aria-busy", value ? "true" : "false");
  }
  function ready() {
    if (!img.complete || !img.naturalWidth) return;
    shownAt = performance.now();
    buttons.forEach((b) => b.classList.remove("chosen"));
    setBusy(false);
  }
  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }
  img.addEventListener("load", ready);
  img.addEventListener("error", () => say("The image did not load. Reload the page."));
  ready();

  async function send(answer) {
    if (busy || !answer) return;
    setBusy(true);
    buttons.forEach((b) => b.classList.toggle("chosen", b.value === answer));
    clientMs.value = shownAt === null ? "" : String(Math.round(performance.now() - shownAt));
    const body = new URLSearchParams(new FormData(form));
    body.set("answer", answer);
    let response, data;
    try {
      response = await fetch(form.action, {
        method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
      });
      data = await response.json();
    } catch (err) {
      say("Could not reach the server. Check the connection and try again.");
      setBusy(false);
      return;
    }
    if (!response.ok || !data.ok) {
      if (response.status === 409) { window.location.reload(); return; }
      say(data && data.error ? data.error : "Something went wrong. Reload the page.");
      setBusy(false);
      return;
    }
    say("");
    if (data.feedback && feedback) {
      const what = data.feedback.truth === "real" ? "real" : "generated";
      feedback.textContent = (data.feedback.correct ? "Right" : "Wrong") + ": the image you just rated was " + what + ".";
      feedback.className = "feedback " + (data.feedback.correct ? "right" : "wrong");
      feedback.hidden = false;
    }
    const wait = data.feedback ? delay : 0;
    window.setTimeout(() => {
      if (data.done) { window.location.assign(data.done); return; }
      position.textContent = String(data.position + 1);
      trial.value = data.next.trial;
      img.src = data.next.image;
    }, wait);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(event.submitter ? event.submitter.value : null);
  });
  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    const answer = keys[event.key.toLowerCase()];
    if (!answer) return;
    event.preventDefault();
    send(answer);
  });
})();
