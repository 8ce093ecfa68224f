// Tessera web UI: copy buttons. Everything else works without script.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  // Said aloud by screen readers too (an aria-live region next to the button).
  const status = document.getElementById(button.dataset.copy + "-status");
  const say = (text) => { if (status) status.textContent = text; };
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
    say("Copied to the clipboard.");
  } catch {
    // No clipboard access (e.g. plain HTTP): select the value to copy by hand.
    field.focus();
    field.select();
    button.textContent = "Selected";
    say("The value is selected: copy it with your keyboard.");
  }
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
