// "copy code": the optimlab Python snippet the API returned with the scene's numbers
// (the `code` field), copied to the clipboard; where the browser refuses, the snippet is shown
// selected in a text box so that the learner can copy it by hand.

export function setupCode() {
  const button = document.getElementById("copy-code");
  const toggle = document.getElementById("show-code");
  const panel = document.getElementById("code-panel");
  const text = document.getElementById("code-text");
  const note = document.getElementById("code-note");
  const said = document.getElementById("copy-status");
  let code = null;

  const openPanel = (message) => {
    panel.hidden = false;
    note.textContent = message;
    toggle.setAttribute("aria-expanded", "true");
    text.focus();
    text.select();
  };

  button.addEventListener("click", async () => {
    if (!code) return;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(code);
      said.textContent = "copied ✓";
      setTimeout(() => { said.textContent = ""; }, 2500);
    } catch (_) {
      said.textContent = "";
      openPanel("This browser did not allow copying: the code is selected below, press Ctrl-C (⌘-C).");
    }
  });
  toggle.addEventListener("click", () => {
    if (panel.hidden) openPanel("The optimlab Python code that reproduces this scene:");
    else {
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
    }
  });

  return {
    set(snippet, what) {
      code = snippet || null;
      text.value = code || "";
      button.disabled = !code;
      toggle.disabled = !code;
      button.title = code ? `copy the optimlab code of ${what}` : "nothing to copy yet";
      if (!code) {
        panel.hidden = true;
        toggle.setAttribute("aria-expanded", "false");
      }
    },
    get: () => code,
  };
}
