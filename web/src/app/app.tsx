import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useState, useSyncExternalStore } from "react";
import { RouterProvider } from "react-router-dom";
import { ErrorBoundary } from "@/components/error-boundary";
import { ProblemError } from "@/lib/problem";
import { keepSessionFresh } from "@/lib/refresh";
import { session } from "@/lib/session";
import { router } from "./router";

function isRefusal(error: unknown): boolean {
  const status = error instanceof ProblemError ? error.problem.status : 0;
  return status >= 400 && status < 500;
}

export function App() {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          // A refusal (4xx) is final; a network error or a 5xx is tried twice more.
          queries: {
            retry: (failures, error) => failures < 2 && !isRefusal(error),
            // No call without a session: a page still mounted for a moment
            // after a log-out or an account deletion does not refetch (401).
            enabled: () => session.get() !== null,
          },
        },
      }),
  );
  const [appRouter] = useState(router);
  // main.tsx started the restore from the cookie: no route renders (and
  // sends to /login) before it answered.
  const restoring = useSyncExternalStore(session.subscribe, session.isRestoring, session.isRestoring);
  useEffect(() => keepSessionFresh(), []);
  // A new user, or none: nothing cached for the last one stays.
  useEffect(() => session.subscribe((s) => (s ? undefined : client.clear())), [client]);
  return (
    <ErrorBoundary>
      <QueryClientProvider client={client}>
        {restoring ? (
          <p className="page" role="status">
            Loading…
          </p>
        ) : (
          <RouterProvider router={appRouter} future={{ v7_startTransition: true }} />
        )}
      </QueryClientProvider>
    </ErrorBoundary>
  );
}
