export const name = "schedules";

export function render(view) {
  view.textContent = "Not built yet.";
}
