// The admin dashboard's figures (GET /admin/analytics/..., role admin), as
// TanStack Query hooks; and each one's CSV download (the same route with
// `Accept: text/csv`).
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api, type RequestOptions, type Route } from "@/lib/api";
import type { Schemas } from "@/lib/api-types";
import { download } from "@/lib/download";
import type { ProblemError } from "@/lib/problem";

export type DailySeries = Schemas["DailySeries"];
export type DailyPoint = Schemas["DailyPoint"];
export type PlanCountList = Schemas["PlanCountList"];
export type ModelUsageList = Schemas["ModelUsageList"];
export type PlanSubscriptionList = Schemas["PlanSubscriptionList"];
export type Mrr = Schemas["Mrr"];
export type TopUserList = Schemas["TopUserList"];
export type ConversationLength = Schemas["ConversationLength"];
export type OverdueInvoiceList = Schemas["OverdueInvoiceList"];
export type LifetimeValueList = Schemas["LifetimeValueList"];

type Query = RequestOptions["query"];

/** One figure: where it is and with which query. */
export interface Source {
  path: Route;
  query?: Query;
  /** The download's name when the server gives none. */
  name: string;
}

export const sources = {
  daily: (from: string, to: string): Source => ({ path: "/admin/analytics/daily", query: { from, to }, name: "daily" }),
  usersByPlan: (): Source => ({ path: "/admin/analytics/users-by-plan", name: "users-by-plan" }),
  modelUsage: (month: string): Source => ({ path: "/admin/analytics/token-usage/models", query: { month }, name: "token-usage-models" }),
  userUsage: (month: string): Source => ({ path: "/admin/analytics/token-usage/users", query: { month }, name: "token-usage-users" }),
  subscriptions: (): Source => ({ path: "/admin/analytics/subscriptions", name: "subscriptions" }),
  mrr: (): Source => ({ path: "/admin/analytics/mrr", name: "mrr" }),
  topUsers: (days: number, limit: number): Source => ({ path: "/admin/analytics/top-users", query: { days, limit }, name: "top-users" }),
  conversationLength: (days: number): Source => ({ path: "/admin/analytics/conversation-length", query: { days }, name: "conversation-length" }),
  // Paged lists: the JSON is their first page (20 rows, and `nextCursor`
  // when more follow); the CSV has every row.
  overdueInvoices: (): Source => ({ path: "/admin/analytics/overdue-invoices", name: "overdue-invoices" }),
  lifetimeValue: (): Source => ({ path: "/admin/analytics/lifetime-value", name: "lifetime-value" }),
};

/**
 * A figure as JSON. Figures change slowly: a minute before it is fetched
 * again, and while a new range loads the old numbers stay on screen.
 */
export function useFigure<T>(source: Source, enabled = true) {
  return useQuery<T, ProblemError>({
    queryKey: ["admin", "analytics", source.path, source.query ?? {}],
    queryFn: ({ signal }) => api.get<T>(source.path, { query: source.query, signal }),
    staleTime: 60_000,
    placeholderData: keepPreviousData,
    enabled,
  });
}

/** Saves the figure as CSV; resolves with the file's name. */
export function downloadCsv(source: Source): Promise<string> {
  return download(source.path, { query: source.query, accept: "text/csv", fallback: `${source.name}.csv` });
}
