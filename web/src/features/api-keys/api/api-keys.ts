import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { Schemas } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";

export type ApiKeyView = Schemas["ApiKeyView"];
export type ApiKeyList = Schemas["ApiKeyList"];
export type CreatedApiKey = Schemas["CreatedApiKey"];
export type CreateApiKeyBody = Schemas["CreateApiKeyBody"];

const keysKey = ["me", "api-keys"] as const;

export function useApiKeys() {
  return useQuery<ApiKeyList, ProblemError>({
    queryKey: keysKey,
    queryFn: ({ signal }) => api.get<ApiKeyList>("/me/api-keys", { signal }),
  });
}

/** Creates a key; the answer is the only time its secret is seen. */
export function useCreateApiKey() {
  const client = useQueryClient();
  return useMutation<CreatedApiKey, ProblemError, CreateApiKeyBody>({
    mutationFn: (body) => api.post<CreatedApiKey>("/me/api-keys", body),
    onSuccess: () => client.invalidateQueries({ queryKey: keysKey }),
  });
}

export function useRevokeApiKey() {
  const client = useQueryClient();
  return useMutation<void, ProblemError, string>({
    mutationFn: (id) =>
      api.delete<void>(`/me/api-keys/${id}`).catch((e: ProblemError) => {
        // Already gone (another tab, another device): as good as revoked.
        if (e.problem?.status !== 404) throw e;
      }),
    onSettled: () => client.invalidateQueries({ queryKey: keysKey }),
  });
}
