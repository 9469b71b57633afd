// The session in this page: the access token in memory only (never in
// localStorage). The refresh token is the gateway's HttpOnly cookie, out of
// the script's reach; localStorage holds only a flag saying that a cookie
// was set, so a fresh page knows whether restoring is worth a call, and
// other tabs learn of a log-out.
import type { TokenResponse, User } from "./api-types";

export interface Session {
  accessToken: string;
  /** When the access token expires (ms since the epoch). */
  expiresAt: number;
  user: User;
}

type Listener = (session: Session | null) => void;

/** The flag's key; its value is "1" while a cookie session exists. */
export const SESSION_FLAG = "aichat.session";

let current: Session | null = null;
/** True until the start-up restore has answered. */
let restoring = false;
const listeners = new Set<Listener>();

function notify() {
  listeners.forEach((l) => l(current));
}

function flag(on: boolean) {
  try {
    if (on) localStorage.setItem(SESSION_FLAG, "1");
    else localStorage.removeItem(SESSION_FLAG);
  } catch {
    // Storage disabled: the page still works, a reload logs out.
  }
}

export const session = {
  get(): Session | null {
    return current;
  },
  accessToken(): string | null {
    return current?.accessToken ?? null;
  },
  set(tokens: TokenResponse): void {
    current = { accessToken: tokens.accessToken, expiresAt: Date.now() + tokens.expiresIn * 1000, user: tokens.user };
    restoring = false;
    flag(true);
    notify();
  },
  /** The user changed (a new name): same tokens. */
  setUser(user: User): void {
    if (!current) return;
    current = { ...current, user };
    notify();
  },
  clear(): void {
    current = null;
    restoring = false;
    flag(false);
    notify();
  },
  /** Whether a cookie session may exist (this browser logged in and did not log out). */
  mayRestore(): boolean {
    try {
      return localStorage.getItem(SESSION_FLAG) === "1";
    } catch {
      return false;
    }
  },
  isRestoring(): boolean {
    return restoring;
  },
  setRestoring(value: boolean): void {
    restoring = value;
    notify();
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
