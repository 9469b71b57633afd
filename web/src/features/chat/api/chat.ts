import { useInfiniteQuery, useMutation, useQuery, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useEffect } from "react";
import { api } from "@/lib/api";
import type { Conversation, ConversationPage, Message, MessagePage, ModelList, Schemas } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";

export const chatKeys = {
  conversations: ["conversations"] as const,
  conversation: (id: string) => ["conversation", id] as const,
  messages: (id: string) => ["messages", id] as const,
  models: ["models"] as const,
};

export function useConversations() {
  return useInfiniteQuery<ConversationPage, ProblemError, InfiniteData<ConversationPage>, readonly string[], string | undefined>({
    queryKey: chatKeys.conversations,
    queryFn: ({ pageParam, signal }) =>
      api.get<ConversationPage>("/conversations", { query: { limit: 20, cursor: pageParam, archived: false }, signal }),
    initialPageParam: undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
}

export function useConversation(id: string) {
  return useQuery<Conversation, ProblemError>({
    queryKey: chatKeys.conversation(id),
    queryFn: ({ signal }) => api.get<Conversation>(`/conversations/${id}`, { signal }),
  });
}

/** Every message of a conversation, oldest first (pages fetched one after the other). */
export function useMessages(id: string) {
  const query = useInfiniteQuery<MessagePage, ProblemError, InfiniteData<MessagePage>, readonly string[], string | undefined>({
    queryKey: chatKeys.messages(id),
    queryFn: ({ pageParam, signal }) =>
      api.get<MessagePage>(`/conversations/${id}/messages`, { query: { limit: 100, cursor: pageParam }, signal }),
    initialPageParam: undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
  });
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = query;
  useEffect(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);
  const messages: Message[] = query.data?.pages.flatMap((p) => p.items) ?? [];
  return { ...query, messages };
}

export function useModels() {
  return useQuery<ModelList, ProblemError>({
    queryKey: chatKeys.models,
    queryFn: ({ signal }) => api.get<ModelList>("/models", { signal }),
    staleTime: 60_000,
  });
}

export function useCreateConversation() {
  const client = useQueryClient();
  return useMutation<Conversation, ProblemError, Schemas["CreateConversationBody"]>({
    mutationFn: (body) => api.post<Conversation>("/conversations", body),
    onSuccess: () => client.invalidateQueries({ queryKey: chatKeys.conversations }),
  });
}
