import { Link, NavLink, Outlet, useLocation, useParams } from "react-router-dom";
import { Button, ProblemAlert } from "@/components/ui";
import { useConversations } from "../api/chat";
import styles from "./chat.module.css";

export function ChatLayout() {
  const { conversationId } = useParams();
  const { pathname } = useLocation();
  const conversations = useConversations();
  const items = conversations.data?.pages.flatMap((p) => p.items) ?? [];
  const open = Boolean(conversationId) || pathname.endsWith("/new");

  return (
    <div className={styles.layout} data-open={open}>
      <nav className={styles.sidebar} aria-label="Conversations">
        <p>
          <Link to="/chat/new" className="new-conversation">
            + New conversation
          </Link>
        </p>
        <h2>Conversations</h2>
        <ProblemAlert problem={conversations.error?.problem} />
        {conversations.isPending && <p>Loading…</p>}
        {conversations.isSuccess && items.length === 0 && <p>No conversations yet.</p>}
        <ul className={styles.list}>
          {items.map((c) => (
            <li key={c.id}>
              <NavLink to={`/chat/${c.id}`} title={c.title}>
                {c.title}
              </NavLink>
            </li>
          ))}
        </ul>
        {conversations.hasNextPage && (
          <Button variant="secondary" onClick={() => void conversations.fetchNextPage()} disabled={conversations.isFetchingNextPage}>
            {conversations.isFetchingNextPage ? "Loading…" : "Load more"}
          </Button>
        )}
      </nav>
      <div className={styles.main}>
        <Outlet />
      </div>
    </div>
  );
}

export function ChatHome() {
  return <p className={styles.empty}>Pick a conversation or start a new one.</p>;
}
