// Formatting of times, durations and values for display.

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

export function durationMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** How long a run took (or has been running: until now). */
export function runDuration(start, close) {
  if (!start) return "";
  const end = close ? new Date(close).getTime() : Date.now();
  return durationMs(end - new Date(start).getTime());
}

/** A short one-line preview of a JSON value, for table cells. */
export function preview(value, chars = 80) {
  if (value === undefined) return "";
  const text = JSON.stringify(value);
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** Milliseconds since the epoch as the same UTC text as `time`. */
export function timeMs(ms) {
  return ms === null || ms === undefined ? "" : time(new Date(ms).toISOString());
}

/** A schedule spec in one line: its cron expressions, intervals and calendars. */
export function specText(spec) {
  const parts = [...(spec.cron_expressions || [])];
  for (const interval of spec.intervals || []) {
    parts.push(`every ${durationMs(interval.every_ms)}${interval.offset_ms
      ? ` + ${durationMs(interval.offset_ms)}` : ""}`);
  }
  if ((spec.calendars || []).length) parts.push(`${spec.calendars.length} calendar(s)`);
  if (spec.time_zone_name) parts.push(`(${spec.time_zone_name})`);
  return parts.join("; ");
}
