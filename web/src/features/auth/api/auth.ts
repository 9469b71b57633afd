import { useMutation } from "@tanstack/react-query";
import { COOKIE_HEADERS, api } from "@/lib/api";
import type { Schemas, TokenResponse } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";
import { session } from "@/lib/session";

export function useLogin() {
  return useMutation<TokenResponse, ProblemError, Schemas["LoginBody"]>({
    // The refresh token goes to the HttpOnly cookie, not into this answer.
    mutationFn: (body) => api.post<TokenResponse>("/auth/login", body, { headers: COOKIE_HEADERS, auth: false }),
    onSuccess: (tokens) => session.set(tokens),
  });
}

export function useRegister() {
  return useMutation<Schemas["UserEnvelope"], ProblemError, Schemas["RegisterBody"]>({
    mutationFn: (body) => api.post("/auth/register", body),
  });
}

export function useVerifyEmail() {
  return useMutation<Schemas["UserEnvelope"], ProblemError, string>({
    mutationFn: (token) => api.post("/auth/verify-email", { token } satisfies Schemas["TokenBody"]),
  });
}

export function useForgotPassword() {
  return useMutation<void, ProblemError, string>({
    mutationFn: (email) => api.post("/auth/forgot-password", { email } satisfies Schemas["EmailBody"]),
  });
}

export function useResetPassword() {
  return useMutation<void, ProblemError, Schemas["ResetPasswordBody"]>({
    mutationFn: (body) => api.post("/auth/reset-password", body),
  });
}

/** Ends the session the cookie names (the gateway clears the cookie), then this page's. */
export async function logout(): Promise<void> {
  try {
    await api.post("/auth/logout", undefined, { headers: COOKIE_HEADERS, auth: false });
  } catch {
    // Already over, or the server is away: this page forgets it all the same.
  } finally {
    session.clear();
  }
}
