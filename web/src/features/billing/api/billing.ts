import { useQuery } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type { MonthlyUsage } from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";

export function useUsage() {
  return useQuery<MonthlyUsage, ProblemError>({
    queryKey: ["usage"],
    queryFn: ({ signal }) => api.get<MonthlyUsage>("/billing/usage", { signal }),
  });
}
