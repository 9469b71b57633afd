import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "@/lib/api";
import type {
  BillingInterval,
  CheckoutSession,
  InvoicePage,
  MonthlyUsage,
  PaymentPage,
  PlanList,
  PortalSession,
  Subscription,
  User,
} from "@/lib/api-types";
import type { ProblemError } from "@/lib/problem";
import { session } from "@/lib/session";

export function useUsage() {
  return useQuery<MonthlyUsage, ProblemError>({
    queryKey: ["usage"],
    queryFn: ({ signal }) => api.get<MonthlyUsage>("/billing/usage", { signal }),
  });
}

const subscriptionKey = ["billing", "subscription"] as const;

export function usePlans() {
  return useQuery<PlanList, ProblemError>({
    queryKey: ["billing", "plans"],
    queryFn: ({ signal }) => api.get<PlanList>("/billing/plans", { signal }),
    staleTime: 5 * 60_000,
  });
}

/**
 * The caller's subscription. `poll` (ms, or false) refetches it on a timer:
 * after a checkout, until the webhook has moved it.
 */
export function useSubscription(poll: number | false = false) {
  return useQuery<Subscription, ProblemError>({
    queryKey: subscriptionKey,
    queryFn: ({ signal }) => api.get<Subscription>("/billing/subscription", { signal }),
    refetchInterval: poll,
  });
}

/** The signed-in user as the server has it now (the plan tier follows the subscription); the session learns it. */
export function useMe(poll: number | false = false) {
  return useQuery<User, ProblemError>({
    queryKey: ["me"],
    queryFn: async ({ signal }) => {
      const me = await api.get<User>("/me", { signal });
      session.setUser(me);
      return me;
    },
    refetchInterval: poll,
  });
}

/** Starts a Stripe Checkout for a paid plan and sends the browser there. */
export function useCheckout(go: (url: string) => void = (url) => window.location.assign(url)) {
  return useMutation<CheckoutSession, ProblemError, { planId: string; interval: BillingInterval }>({
    mutationFn: (body) => api.post<CheckoutSession>("/billing/checkout", body),
    onSuccess: (checkout) => go(checkout.url),
  });
}

/** Opens Stripe's Billing Portal (payment methods, invoices, plan changes). */
export function usePortal(go: (url: string) => void = (url) => window.location.assign(url)) {
  return useMutation<PortalSession, ProblemError, void>({
    mutationFn: () => api.post<PortalSession>("/billing/portal", {}),
    onSuccess: (portal) => go(portal.url),
  });
}

export function useCancelSubscription() {
  const client = useQueryClient();
  return useMutation<Subscription, ProblemError, { reason?: string }>({
    mutationFn: ({ reason }) =>
      api.post<Subscription>("/billing/subscription/cancel", { atPeriodEnd: true, ...(reason ? { reason } : {}) }),
    onSuccess: (subscription) => client.setQueryData(subscriptionKey, subscription),
  });
}

export function useResumeSubscription() {
  const client = useQueryClient();
  return useMutation<Subscription, ProblemError, void>({
    mutationFn: () => api.post<Subscription>("/billing/subscription/resume", {}),
    onSuccess: (subscription) => client.setQueryData(subscriptionKey, subscription),
  });
}

const PAGE_SIZE = 10;

/** A history list (`/billing/invoices`, `/billing/payments`), a page at a time by its cursor. */
function useHistory<P extends InvoicePage | PaymentPage>(path: "/billing/invoices" | "/billing/payments", poll: number | false) {
  return useInfiniteQuery<P, ProblemError, { pages: P[] }, string[], string | undefined>({
    queryKey: ["billing", path],
    queryFn: ({ signal, pageParam }) => api.get<P>(path, { signal, query: { limit: PAGE_SIZE, cursor: pageParam } }),
    initialPageParam: undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    refetchInterval: poll,
  });
}

export const useInvoices = (poll: number | false = false) => useHistory<InvoicePage>("/billing/invoices", poll);
export const usePayments = (poll: number | false = false) => useHistory<PaymentPage>("/billing/payments", poll);
