import { useInfiniteQuery, useMutation, useQuery, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { useEffect } from "react";
import { api } from "@/lib/api";
import type { Conversation, ConversationPage, Message, MessagePage, ModelList, Schemas } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";

export const chatKeys = {
  conversations: ["conversations"] as const,
  conversationList: (archived: boolean) => ["conversations", archived ? "archived" : "active"] as const,
  conversation: (id: string) => ["conversation", id] as const,
  messages: (id: string) => ["messages", id] as const,
  models: ["models"] as const,
};

/** The conversations, newest first, 20 a page (cursor pagination). */
export function useConversations(archived = false) {
  return useInfiniteQuery<ConversationPage, ProblemError, InfiniteData<ConversationPage>, readonly string[], string | undefined>({
    queryKey: chatKeys.conversationList(archived),
    queryFn: ({ pageParam, signal }) =>
      api.get<ConversationPage>("/conversations", { query: { limit: 20, cursor: pageParam, archived }, signal }),
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

/** A conversation changed (renamed, archived, ...): every list and its own query learn it. */
function useConversationChanged() {
  const client = useQueryClient();
  return (conversation: Conversation) => {
    client.setQueryData(chatKeys.conversation(conversation.id), conversation);
    void client.invalidateQueries({ queryKey: chatKeys.conversations });
  };
}

export function useRenameConversation() {
  const changed = useConversationChanged();
  return useMutation<Conversation, ProblemError, { id: string; title: string }>({
    mutationFn: ({ id, title }) => api.patch<Conversation>(`/conversations/${id}`, { title } satisfies Schemas["UpdateConversationBody"]),
    onSuccess: changed,
  });
}

export function useArchiveConversation() {
  const changed = useConversationChanged();
  return useMutation<Conversation, ProblemError, { id: string; archived: boolean }>({
    mutationFn: ({ id, archived }) => api.post<Conversation>(`/conversations/${id}/${archived ? "archive" : "unarchive"}`),
    onSuccess: changed,
  });
}

export function useDeleteConversation() {
  const client = useQueryClient();
  return useMutation<void, ProblemError, string>({
    mutationFn: (id) => api.delete<void>(`/conversations/${id}`),
    // Only the lists: the deleted conversation's own queries are left to
    // expire (removing them while its page is still open would refetch them: 404).
    onSuccess: () => client.invalidateQueries({ queryKey: chatKeys.conversations }),
  });
}
