import { Navigate, Outlet, createBrowserRouter, useLocation, type RouteObject } from "react-router-dom";
import {
  CheckEmailPage,
  ForgotPasswordPage,
  LoginPage,
  ResetPasswordPage,
  SignupPage,
  VerifyEmailPage,
} from "@/features/auth/components/auth-pages";
import { AccountDeletedPage, AccountPage } from "@/features/account/components/account-page";
import { AdminPage } from "@/features/admin/components/admin-page";
import { ApiKeysPage } from "@/features/api-keys/components/api-keys-page";
import { BillingPage } from "@/features/billing/components/billing-page";
import { UsagePage } from "@/features/billing/components/usage";
import { ChatHome, ChatLayout } from "@/features/chat/components/chat-layout";
import { ConversationPage } from "@/features/chat/components/conversation";
import { NewConversation } from "@/features/chat/components/new-conversation";
import { useSession } from "@/hooks/use-session";
import { ErrorBoundary } from "@/components/error-boundary";
import { AppLayout, PublicLayout } from "./layout";

function RequireAuth() {
  const session = useSession();
  const location = useLocation();
  if (!session) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <Outlet />;
}

function Home() {
  return <Navigate to={useSession() ? "/chat" : "/login"} replace />;
}

function NotFound() {
  return (
    <section className="page">
      <h1>Not found</h1>
      <p>
        There is no page here. <a href="/">Go to the start</a>.
      </p>
    </section>
  );
}

export const routes: RouteObject[] = [
  {
    element: (
      <ErrorBoundary>
        <Outlet />
      </ErrorBoundary>
    ),
    children: [
      { path: "/", element: <Home /> },
      {
        element: <PublicLayout />,
        children: [
          { path: "/login", element: <LoginPage /> },
          { path: "/signup", element: <SignupPage /> },
          { path: "/check-email", element: <CheckEmailPage /> },
          { path: "/verify-email", element: <VerifyEmailPage /> },
          { path: "/forgot-password", element: <ForgotPasswordPage /> },
          { path: "/reset-password", element: <ResetPasswordPage /> },
          { path: "/account-deleted", element: <AccountDeletedPage /> },
        ],
      },
      {
        element: <RequireAuth />,
        children: [
          {
            element: <AppLayout />,
            children: [
              {
                path: "/chat",
                element: <ChatLayout />,
                children: [
                  { index: true, element: <ChatHome /> },
                  { path: "new", element: <NewConversation /> },
                  { path: ":conversationId", element: <ConversationPage /> },
                ],
              },
              { path: "/usage", element: <UsagePage /> },
              { path: "/billing", element: <BillingPage /> },
              { path: "/plans", element: <Navigate to="/billing" replace /> },
              { path: "/admin", element: <AdminPage /> },
              { path: "/account", element: <AccountPage /> },
              { path: "/api-keys", element: <ApiKeysPage /> },
            ],
          },
        ],
      },
      { path: "*", element: <NotFound /> },
    ],
  },
];

export const router = () =>
  createBrowserRouter(routes, {
    future: { v7_relativeSplatPath: true, v7_fetcherPersist: true, v7_normalizeFormMethod: true, v7_partialHydration: true, v7_skipActionErrorRevalidation: true },
  });
