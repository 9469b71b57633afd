import { useMutation } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { TokenResponse, User } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";
import { session } from "@/lib/session";

export function useLogin() {
  return useMutation<TokenResponse, ProblemError, { email: string; password: string }>({
    mutationFn: (body) => api.post<TokenResponse>("/auth/login", body),
    onSuccess: (tokens) => session.set(tokens),
  });
}

export function useRegister() {
  return useMutation<{ user: User }, ProblemError, { email: string; password: string; name: string }>({
    mutationFn: (body) => api.post("/auth/register", body),
  });
}

export function useVerifyEmail() {
  return useMutation<{ user: User }, ProblemError, string>({
    mutationFn: (token) => api.post("/auth/verify-email", { token }),
  });
}

export function useForgotPassword() {
  return useMutation<void, ProblemError, string>({
    mutationFn: (email) => api.post("/auth/forgot-password", { email }),
  });
}

export function useResetPassword() {
  return useMutation<void, ProblemError, { token: string; password: string }>({
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
