import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { RouterProvider } from "react-router-dom";
import { ErrorBoundary } from "@/components/error-boundary";
import { keepSessionFresh } from "@/lib/refresh";
import { session } from "@/lib/session";
import { router } from "./router";

export function App() {
  const [client] = useState(
    () =>
      new QueryClient({
        defaultOptions: { queries: { retry: (n, e) => n < 2 && (e as { problem?: { status: number } }).problem?.status !== 401 && n < 2 } },
      }),
  );
  const [appRouter] = useState(router);
  useEffect(() => keepSessionFresh(), []);
  // A new user, or none: nothing cached for the last one stays.
  useEffect(() => session.subscribe((s) => (s ? undefined : client.clear())), [client]);
  return (
    <ErrorBoundary>
      <QueryClientProvider client={client}>
        <RouterProvider router={appRouter} />
      </QueryClientProvider>
    </ErrorBoundary>
  );
}
