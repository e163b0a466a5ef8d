// Buttons that record a decision ask first: a submit button with data-confirm shows its text in
// a confirmation dialog and submits only when the user agrees (no inline handlers: the CSP
// allows scripts from the app itself).
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
