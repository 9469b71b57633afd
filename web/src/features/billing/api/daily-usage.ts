import { useQuery } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { Schemas } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";

export type DailyUsageList = Schemas["DailyUsageList"];
export type DailyUsageDay = Schemas["DailyUsage"];

/**
 * The caller's tokens and cost per UTC day, the last `days` days, oldest
 * first. Under the "usage" key, so a sent message (which invalidates
 * ["usage"]) refreshes it with the month's usage.
 */
export function useDailyUsage(days: number) {
  return useQuery<DailyUsageList, ProblemError>({
    queryKey: ["usage", "daily", days],
    queryFn: ({ signal }) => api.get<DailyUsageList>("/me/usage/daily", { query: { days }, signal }),
  });
}
