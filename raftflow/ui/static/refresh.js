// Auto-refresh: runs `load` now and then every `periodMs` while `enabled()` says so, never two
// at once: a tick during a load is skipped, a `now()` during one runs right after it.

export const REFRESH_MS = 3000;

export function autoRefresh(load, {periodMs = REFRESH_MS, enabled = () => true} = {}) {
  let running = false;
  let again = false;
  let stopped = false;
  const run = async (forced) => {
    if (stopped || (!forced && !enabled())) return;
    if (running) {
      again = again || forced;
      return;
    }
    running = true;
    try {
      await load();
    } finally {
      running = false;
      if (again) {
        again = false;
        run(true);
      }
    }
  };
  const timer = setInterval(() => run(false), periodMs);
  run(true);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    now: () => run(true),
  };
}
