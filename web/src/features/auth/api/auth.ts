import { useMutation } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { Schemas, TokenResponse } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";
import { session } from "@/lib/session";

export function useLogin() {
  return useMutation<TokenResponse, ProblemError, Schemas["LoginBody"]>({
    mutationFn: (body) => api.post<TokenResponse>("/auth/login", body),
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

export async function logout(): Promise<void> {
  try {
    await api.post("/auth/logout");
  } finally {
    session.clear();
  }
}
