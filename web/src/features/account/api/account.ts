import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { Schemas, User } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";
import { session } from "@/lib/session";

export type SessionView = Schemas["SessionView"];
export type SessionList = Schemas["SessionList"];

const sessionsKey = ["me", "sessions"] as const;

export function useSessions() {
  return useQuery<SessionList, ProblemError>({
    queryKey: sessionsKey,
    queryFn: ({ signal }) => api.get<SessionList>("/me/sessions", { signal }),
  });
}

export function useUpdateName() {
  return useMutation<User, ProblemError, string>({
    mutationFn: (name) => api.patch<User>("/me", { name } satisfies Schemas["UpdateMeBody"]),
    onSuccess: (user) => session.setUser(user),
  });
}

export function useChangePassword() {
  const client = useQueryClient();
  return useMutation<void, ProblemError, Schemas["ChangePasswordBody"]>({
    mutationFn: (body) => api.post<void>("/me/password", body),
    // The other sessions are revoked by the change.
    onSuccess: () => client.invalidateQueries({ queryKey: sessionsKey }),
  });
}

export function useRevokeSession() {
  const client = useQueryClient();
  return useMutation<void, ProblemError, string>({
    mutationFn: (id) => api.delete<void>(`/me/sessions/${id}`),
    onSettled: () => client.invalidateQueries({ queryKey: sessionsKey }),
  });
}

/** "Log out everywhere else": the API revokes one session at a time, so each other one in turn. */
export function useRevokeOtherSessions() {
  const client = useQueryClient();
  return useMutation<void, ProblemError, SessionView[]>({
    mutationFn: async (sessions) => {
      for (const s of sessions.filter((s) => !s.current)) {
        // One that ended meanwhile (404) is as good as revoked.
        await api.delete<void>(`/me/sessions/${s.id}`).catch((e: ProblemError) => {
          if (e.problem?.status !== 404) throw e;
        });
      }
    },
    onSettled: () => client.invalidateQueries({ queryKey: sessionsKey }),
  });
}

/** Deletes the account; the caller leaves the page, then ends the session (`endSession`). */
export function useDeleteAccount() {
  return useMutation<void, ProblemError, string>({
    mutationFn: (password) => api.delete<void>("/me", { body: { password } satisfies Schemas["DeleteMeBody"] }),
  });
}

/** The account is gone, and with it every session: so is this page's. */
export function endSession() {
  session.clear();
}
