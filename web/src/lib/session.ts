// The session's tokens, in memory only (never localStorage): a reload logs
// out until the refresh token moves to the gateway's HttpOnly cookie.
import type { TokenResponse, User } from "./api-types";

export interface Session {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  user: User;
}

type Listener = (session: Session | null) => void;

let current: Session | null = null;
const listeners = new Set<Listener>();

export const session = {
  get(): Session | null {
    return current;
  },
  accessToken(): string | null {
    return current?.accessToken ?? null;
  },
  set(tokens: TokenResponse): void {
    current = {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: Date.now() + tokens.expiresIn * 1000,
      user: tokens.user,
    };
    listeners.forEach((l) => l(current));
  },
  clear(): void {
    current = null;
    listeners.forEach((l) => l(null));
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
