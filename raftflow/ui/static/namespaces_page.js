export const name = "namespaces";

export function render(view) {
  view.textContent = "Not built yet.";
}
