// Keeps the session alive: refreshes the access token a minute before it
// expires. The refresh token is in memory for now (a reload logs out); the
// gateway's HttpOnly cookie comes later.
import type { Schemas, TokenResponse } from "./api-types";
import { api } from "./api";
import { session } from "./session";

let timer: ReturnType<typeof setTimeout> | undefined;
let inFlight: Promise<boolean> | null = null;

export function refreshNow(): Promise<boolean> {
  const current = session.get();
  if (!current) return Promise.resolve(false);
  inFlight ??= api
    .post<TokenResponse>("/auth/refresh", { refreshToken: current.refreshToken } satisfies Schemas["RefreshBody"])
    .then((tokens) => {
      session.set(tokens);
      return true;
    })
    .catch(() => {
      session.clear();
      return false;
    })
    .finally(() => {
      inFlight = null;
    });
  return inFlight;
}

/** Schedules the refresh of every new session; returns the unsubscribe. */
export function keepSessionFresh(): () => void {
  const schedule = () => {
    clearTimeout(timer);
    const current = session.get();
    if (!current) return;
    const wait = Math.max(5_000, current.expiresAt - Date.now() - 60_000);
    timer = setTimeout(() => void refreshNow(), wait);
  };
  schedule();
  const unsubscribe = session.subscribe(schedule);
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}
