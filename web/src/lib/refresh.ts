// Keeps the session alive: on start-up, trades the gateway's HttpOnly
// cookie for an access token (a reload keeps you logged in); then refreshes
// a minute before each access token expires; a failed try (no network) is
// tried again shortly; a log-out in another tab ends this one's session.
import { refreshSession } from "./api";
import { SESSION_FLAG, session } from "./session";

/** How long to wait before trying again when the server was not reached. */
export const RETRY_MS = 10_000;

/** Restores the session of an earlier page from the cookie, if there may be one. */
export async function restoreSession(): Promise<boolean> {
  if (session.get()) return true;
  if (!session.mayRestore()) return false;
  session.setRestoring(true);
  try {
    return await refreshSession();
  } finally {
    if (session.isRestoring()) session.setRestoring(false);
  }
}

/** Schedules the refresh of every new session; returns the unsubscribe. */
export function keepSessionFresh(): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = (wait?: number) => {
    clearTimeout(timer);
    const current = session.get();
    if (!current) return;
    const delay = wait ?? Math.max(5_000, current.expiresAt - Date.now() - 60_000);
    timer = setTimeout(async () => {
      const before = session.get();
      const ok = await refreshSession();
      // Not reached (the session is still there, unchanged): try again soon.
      if (!ok && session.get() === before && before) schedule(RETRY_MS);
    }, delay);
  };
  schedule();
  const unsubscribe = session.subscribe(() => schedule());
  const onStorage = (e: StorageEvent) => {
    if (e.key === SESSION_FLAG && e.newValue === null && session.get()) session.clear();
  };
  window.addEventListener("storage", onStorage);
  return () => {
    clearTimeout(timer);
    unsubscribe();
    window.removeEventListener("storage", onStorage);
  };
}
