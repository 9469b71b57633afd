//! One realistic history, as the events the services publish and as the
//! rows their Export* calls would give afterwards: five users on different
//! plans, conversations, paid, failed and refunded payments, an overdue
//! open invoice, a cancellation and a deleted account.
#![expect(clippy::unwrap_used, reason = "test data")]

use std::str::FromStr;

use aichat_analytics::{
    backfill::{Exporter, Page, Rows, Source},
    store::apply::{
        ConversationFacts, Counters, InvoiceState, MessageFact, PaymentState, PlanRow, Profile,
        SubscriptionState, TokenUsageFact, UserFacts,
    },
};
use aichat_events::{
    Envelope, Event, TraceContext,
    billing::{
        InvoiceChanged, InvoiceOverdue, InvoicePaid, PaymentFailed, PaymentRefunded,
        PaymentSucceeded, SubscriptionChanged,
    },
    chat::{
        ConversationCounters, ConversationCreated, ConversationDeleted, ConversationUpdated,
        MessageCreated, TokensUsed,
    },
    identity::{
        SessionRevoked, UserDeleted, UserEmailVerified, UserLoggedIn, UserRegistered, UserSnapshot,
        UserUpdated,
    },
};
use bigdecimal::BigDecimal;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use uuid::Uuid;

pub const FREE: &str = "01a216c1-bf8e-7d99-b752-cb2d286dd79a";
pub const PLUS: &str = "01a216c1-bf8f-7ea8-964c-3886ed72bdbe";
pub const PRO: &str = "01a216c1-bf90-7d92-bc24-57cfe45f9fab";

pub fn money(s: &str) -> BigDecimal {
    BigDecimal::from_str(s).unwrap()
}

/// billing's three seeded plans.
pub fn plans() -> Vec<PlanRow> {
    vec![
        PlanRow {
            id: Uuid::parse_str(FREE).unwrap(),
            name: "Free".into(),
            monthly_price: money("0.00"),
            yearly_price: None,
        },
        PlanRow {
            id: Uuid::parse_str(PLUS).unwrap(),
            name: "Plus".into(),
            monthly_price: money("20.00"),
            yearly_price: Some(money("200.00")),
        },
        PlanRow {
            id: Uuid::parse_str(PRO).unwrap(),
            name: "Pro".into(),
            monthly_price: money("50.00"),
            yearly_price: Some(money("500.00")),
        },
    ]
}

/// The history.
pub struct Scenario {
    /// In the order the services published them.
    pub events: Vec<Envelope>,
    /// What the Export* calls give after it.
    pub export: MemoryExporter,
    pub a: Uuid,
    pub b: Uuid,
    pub c: Uuid,
    pub d: Uuid,
    pub e: Uuid,
    pub overdue_invoice: Uuid,
    pub today: NaiveDate,
}

fn envelope<E: Event>(event: &E, at: DateTime<Utc>) -> Envelope {
    let mut envelope = Envelope::new(event, TraceContext::default()).unwrap();
    envelope.occurred_at = at;
    envelope
}

fn snapshot(user_id: Uuid, created_at: DateTime<Utc>, role: &str) -> UserSnapshot {
    UserSnapshot {
        user_id,
        email: format!("{}@example.com", user_id.simple()),
        name: "Ann Alytics".into(),
        plan_tier: "FREE".into(),
        role: role.into(),
        email_verified: false,
        created_at,
    }
}

fn counters(messages: i32, tokens: i32, at: DateTime<Utc>) -> ConversationCounters {
    ConversationCounters {
        message_count: messages,
        token_count: tokens,
        updated_at: at,
    }
}

impl Scenario {
    #[expect(clippy::too_many_lines, reason = "one story, told once")]
    pub fn new() -> Self {
        let now = Utc::now();
        let today = now.date_naive();
        // Events happen over the last minute, one tick apart.
        let mut tick = 0;
        let mut at = || {
            tick += 1;
            now - Duration::seconds(60) + Duration::milliseconds(tick * 100)
        };
        let (a, b, c, d, e) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut events = Vec::new();
        let mut export = MemoryExporter {
            plans: plans(),
            ..MemoryExporter::default()
        };

        // Registrations.
        let mut created = std::collections::HashMap::new();
        for (user, role) in [
            (a, "user"),
            (b, "user"),
            (c, "user"),
            (d, "user"),
            (e, "user"),
        ] {
            let t = at();
            created.insert(user, t);
            events.push(envelope(
                &UserRegistered {
                    user: snapshot(user, t, role),
                },
                t,
            ));
        }
        events.push(envelope(
            &UserLoggedIn {
                user_id: a,
                session_id: Uuid::now_v7(),
                logged_in_at: now,
            },
            at(),
        ));
        events.push(envelope(
            &UserEmailVerified {
                user_id: b,
                email: "b@example.com".into(),
                verified_at: now,
            },
            at(),
        ));
        let promoted = at();
        events.push(envelope(
            &UserUpdated {
                user: snapshot(e, created[&e], "admin"),
            },
            promoted,
        ));

        // Subscriptions: A on Plus monthly, B on Pro yearly, C on Plus
        // then cancelled.
        let start = now - Duration::days(3);
        let subscription =
            |user: Uuid,
             id: Uuid,
             plan: &str,
             tier: &str,
             status: &str,
             interval: &str,
             end: DateTime<Utc>,
             occurred_at: DateTime<Utc>| SubscriptionChanged {
                user_id: user,
                plan_tier: tier.into(),
                status: status.into(),
                current_period_end: Some(end),
                occurred_at,
                subscription_id: Some(id),
                plan_id: Some(Uuid::parse_str(plan).unwrap()),
                interval: Some(interval.into()),
                current_period_start: Some(start),
            };
        let (sa, sb, sc) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let month_end = start + Duration::days(30);
        let year_end = start + Duration::days(365);
        let (ta, tb, tc1, tc2) = (at(), at(), at(), at());
        for (event, t) in [
            (
                subscription(a, sa, PLUS, "PLUS", "active", "month", month_end, ta),
                ta,
            ),
            (
                subscription(b, sb, PRO, "PRO", "active", "year", year_end, tb),
                tb,
            ),
            (
                subscription(c, sc, PLUS, "PLUS", "active", "month", month_end, tc1),
                tc1,
            ),
            (
                subscription(c, sc, PLUS, "FREE", "canceled", "month", month_end, tc2),
                tc2,
            ),
        ] {
            events.push(envelope(&event, t));
        }
        let exported_sub =
            |user, id, plan: &str, status: &str, interval: &str, end, version| SubscriptionState {
                user_id: user,
                subscription_id: Some(id),
                plan_id: Some(Uuid::parse_str(plan).unwrap()),
                plan_tier: None,
                status: status.into(),
                interval: Some(interval.to_owned()),
                current_period_start: Some(start.naive_utc()),
                current_period_end: Some(end),
                created_at: Some(start.naive_utc()),
                version,
            };
        export.subscriptions = vec![
            exported_sub(
                a,
                sa,
                PLUS,
                "active",
                "month",
                month_end.naive_utc(),
                ta.naive_utc(),
            ),
            exported_sub(
                b,
                sb,
                PRO,
                "active",
                "year",
                year_end.naive_utc(),
                tb.naive_utc(),
            ),
            exported_sub(
                c,
                sc,
                PLUS,
                "canceled",
                "month",
                month_end.naive_utc(),
                tc2.naive_utc(),
            ),
        ];

        // Payments.
        let succeeded = |user, payment, amount: &str, t| PaymentSucceeded {
            user_id: user,
            payment_id: payment,
            amount: money(amount),
            currency: "USD".into(),
            stripe_payment_intent_id: format!("pi_{}", Uuid::now_v7().simple()),
            stripe_invoice_id: None,
            occurred_at: t,
        };
        let exported_payment =
            |user,
             payment,
             amount: &str,
             refunded: &str,
             status: &str,
             created: DateTime<Utc>,
             version: DateTime<Utc>| PaymentState {
                payment_id: payment,
                user_id: user,
                amount: money(amount),
                amount_refunded: money(refunded),
                currency: "USD".into(),
                status: status.into(),
                created_at: created.naive_utc(),
                version: version.naive_utc(),
            };
        let (pa, pb, pb2, pc, pd, pe) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let (tpa, tpb, tpb2, tpc, tpc2, tpd, tpe, tpe2) =
            (at(), at(), at(), at(), at(), at(), at(), at());
        events.push(envelope(&succeeded(a, pa, "20.00", tpa), tpa));
        events.push(envelope(&succeeded(b, pb, "500.00", tpb), tpb));
        events.push(envelope(
            &PaymentFailed {
                user_id: b,
                payment_id: pb2,
                amount: money("500.00"),
                currency: "USD".into(),
                stripe_payment_intent_id: "pi_failed".into(),
                stripe_invoice_id: None,
                failure_code: Some("card_declined".into()),
                occurred_at: tpb2,
            },
            tpb2,
        ));
        events.push(envelope(&succeeded(c, pc, "20.00", tpc), tpc));
        events.push(envelope(
            &PaymentRefunded {
                user_id: c,
                payment_id: pc,
                amount: money("20.00"),
                amount_refunded: money("20.00"),
                currency: "USD".into(),
                stripe_payment_intent_id: "pi_c".into(),
                fully_refunded: true,
                occurred_at: tpc2,
            },
            tpc2,
        ));
        events.push(envelope(&succeeded(d, pd, "20.00", tpd), tpd));
        events.push(envelope(&succeeded(e, pe, "20.00", tpe), tpe));
        events.push(envelope(
            &PaymentRefunded {
                user_id: e,
                payment_id: pe,
                amount: money("20.00"),
                amount_refunded: money("5.00"),
                currency: "USD".into(),
                stripe_payment_intent_id: "pi_e".into(),
                fully_refunded: false,
                occurred_at: tpe2,
            },
            tpe2,
        ));
        export.payments = vec![
            exported_payment(a, pa, "20.00", "0.00", "succeeded", tpa, tpa),
            exported_payment(b, pb, "500.00", "0.00", "succeeded", tpb, tpb),
            exported_payment(b, pb2, "500.00", "0.00", "failed", tpb2, tpb2),
            exported_payment(c, pc, "20.00", "20.00", "refunded", tpc, tpc2),
            exported_payment(d, pd, "20.00", "0.00", "succeeded", tpd, tpd),
            exported_payment(e, pe, "20.00", "5.00", "succeeded", tpe, tpe2),
        ];

        // Invoices of C: one open past due (overdue), one open not yet
        // due, one that was past due but got paid.
        let (i1, i2, i3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let invoice = |id,
                       number: &str,
                       status: &str,
                       due: NaiveDate,
                       paid: Option<DateTime<Utc>>,
                       t: DateTime<Utc>| InvoiceChanged {
            invoice_id: id,
            user_id: c,
            subscription_id: Some(sc),
            invoice_number: number.into(),
            status: status.into(),
            subtotal: money("20.00"),
            tax: money("0.00"),
            total: money("20.00"),
            due_date: Some(due),
            paid_at: paid,
            created_at: start,
            occurred_at: t,
        };
        let n1 = format!("INV-{}-1", c.simple());
        let n2 = format!("INV-{}-2", c.simple());
        let n3 = format!("INV-{}-3", c.simple());
        let (ti1, ti2, ti3, ti3p) = (at(), at(), at(), at());
        let last = [
            invoice(i1, &n1, "open", today - Duration::days(5), None, ti1),
            invoice(i2, &n2, "open", today + Duration::days(10), None, ti2),
            invoice(i3, &n3, "paid", today - Duration::days(3), Some(ti3p), ti3p),
        ];
        events.push(envelope(&last[0], ti1));
        events.push(envelope(&last[1], ti2));
        events.push(envelope(
            &invoice(i3, &n3, "open", today - Duration::days(3), None, ti3),
            ti3,
        ));
        events.push(envelope(&last[2], ti3p));
        events.push(envelope(
            &InvoicePaid {
                user_id: c,
                invoice_id: i3,
                invoice_number: n3.clone(),
                total: money("20.00"),
                currency: "USD".into(),
                paid_at: ti3p,
                occurred_at: ti3p,
            },
            ti3p,
        ));
        let overdue_at = at();
        events.push(envelope(
            &InvoiceOverdue {
                user_id: c,
                invoice_id: i1,
                invoice_number: n1.clone(),
                total: money("20.00"),
                due_date: today - Duration::days(5),
                occurred_at: overdue_at,
            },
            overdue_at,
        ));
        export.invoices = last
            .iter()
            .map(|i| InvoiceState {
                invoice_id: i.invoice_id,
                user_id: i.user_id,
                subscription_id: i.subscription_id,
                invoice_number: i.invoice_number.clone(),
                status: i.status.clone(),
                subtotal: i.subtotal.clone(),
                tax: i.tax.clone(),
                total: i.total.clone(),
                due_date: i.due_date,
                paid_at: i.paid_at.map(|t| t.naive_utc()),
                created_at: i.created_at.naive_utc(),
                version: i.occurred_at.naive_utc(),
            })
            .collect();

        // Conversations: A's and B's with a question and a reply each; D's
        // (deleted with D) and E's (deleted by E) without messages.
        let month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
        let mut talk = |user: Uuid, model: &str, provider: &str, tokens: i32, cost: &str| {
            let conversation = Uuid::now_v7();
            let t0 = at();
            events.push(envelope(
                &ConversationCreated {
                    conversation_id: conversation,
                    user_id: user,
                    model: model.into(),
                    created_at: t0,
                },
                t0,
            ));
            let (question, reply, usage) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
            let (t1, t2) = (at(), at());
            let asked = MessageCreated {
                message_id: question,
                conversation_id: conversation,
                user_id: user,
                role: "user".into(),
                token_count: tokens / 3,
                model: None,
                language: Some("en".into()),
                created_at: t1,
                counters: Some(counters(1, 0, t1)),
            };
            let answered = MessageCreated {
                message_id: reply,
                conversation_id: conversation,
                user_id: user,
                role: "assistant".into(),
                token_count: tokens - tokens / 3,
                model: Some(model.into()),
                language: Some("en".into()),
                created_at: t2,
                counters: Some(counters(2, tokens, t2)),
            };
            let used = TokensUsed {
                usage_id: usage,
                user_id: user,
                conversation_id: Some(conversation),
                message_id: Some(reply),
                reservation_id: None,
                provider: provider.into(),
                model: model.into(),
                prompt_tokens: tokens / 3,
                completion_tokens: tokens - tokens / 3,
                total_tokens: tokens,
                cost_usd: money(cost),
                billing_month: month,
                occurred_at: t2,
                counters: Some(counters(2, tokens, t2)),
                api_key_id: None,
            };
            events.push(envelope(&asked, t1));
            events.push(envelope(&answered, t2));
            events.push(envelope(&used, t2));
            (conversation, t0, [asked, answered], used)
        };
        let mut conversations = Vec::new();
        let mut messages = Vec::new();
        let mut usages = Vec::new();
        for (user, model, provider, tokens, cost) in [
            (a, "gpt-4o", "openai", 100, "0.001000"),
            (b, "claude-3-sonnet", "anthropic", 300, "0.009000"),
        ] {
            let (conversation, t0, said, used) = talk(user, model, provider, tokens, cost);
            conversations.push(ConversationFacts {
                conversation_id: conversation,
                user_id: user,
                model: Some(model.into()),
                created_at: Some(t0.naive_utc()),
                counters: Some(Counters {
                    message_count: 2,
                    token_count: tokens,
                    version: used.occurred_at.naive_utc(),
                }),
            });
            messages.extend(said.iter().map(|m| MessageFact {
                message_id: m.message_id,
                conversation_id: m.conversation_id,
                user_id: m.user_id,
                role: m.role.clone(),
                token_count: m.token_count,
                model: m.model.clone(),
                created_at: m.created_at.naive_utc(),
            }));
            usages.push(used);
        }
        // D's conversation: one priced call, then D is deleted.
        let (cd, ce) = (Uuid::now_v7(), Uuid::now_v7());
        let tcd = at();
        events.push(envelope(
            &ConversationCreated {
                conversation_id: cd,
                user_id: d,
                model: "gpt-4o".into(),
                created_at: tcd,
            },
            tcd,
        ));
        let tud = at();
        let used_d = TokensUsed {
            usage_id: Uuid::now_v7(),
            user_id: d,
            conversation_id: Some(cd),
            message_id: None,
            reservation_id: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            prompt_tokens: 20,
            completion_tokens: 30,
            total_tokens: 50,
            cost_usd: money("0.000500"),
            billing_month: month,
            occurred_at: tud,
            counters: Some(counters(0, 50, tud)),
            api_key_id: None,
        };
        events.push(envelope(&used_d, tud));
        // E's conversation: started, its counters touched, deleted.
        let tce = at();
        events.push(envelope(
            &ConversationCreated {
                conversation_id: ce,
                user_id: e,
                model: "gpt-4o".into(),
                created_at: tce,
            },
            tce,
        ));
        let tcu = at();
        events.push(envelope(
            &ConversationUpdated {
                conversation_id: ce,
                user_id: e,
                counters: counters(0, 0, tcu),
            },
            tcu,
        ));
        events.push(envelope(
            &ConversationDeleted {
                conversation_id: ce,
                user_id: e,
            },
            at(),
        ));
        // D deletes the account.
        events.push(envelope(
            &SessionRevoked {
                user_id: d,
                session_ids: vec![Uuid::now_v7()],
                reason: "account_deleted".into(),
                revoked_at: now,
            },
            at(),
        ));
        events.push(envelope(&UserDeleted { user_id: d }, at()));

        // chat keeps D's tokenUsage row, unlinked.
        usages.push(TokensUsed {
            conversation_id: None,
            ..used_d
        });
        export.conversations = conversations;
        export.messages = messages;
        export.token_usage = usages
            .iter()
            .map(|u| TokenUsageFact {
                usage_id: u.usage_id,
                user_id: u.user_id,
                conversation_id: u.conversation_id,
                provider: u.provider.clone(),
                model: u.model.clone(),
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
                cost_usd: u.cost_usd.clone(),
                billing_month: u.billing_month,
                created_at: u.occurred_at.naive_utc(),
            })
            .collect();
        // identity's rows: D is gone; E is an admin (as of the export).
        let tier_changed = [(a, ta), (b, tb), (c, tc2)];
        export.users = [a, b, c, e]
            .into_iter()
            .map(|user| UserFacts {
                user_id: user,
                created_at: Some(created[&user].naive_utc()),
                plan: Some((
                    match user {
                        u if u == a => "PLUS",
                        u if u == b => "PRO",
                        _ => "FREE",
                    }
                    .to_owned(),
                    tier_changed
                        .iter()
                        .find(|(u, _)| *u == user)
                        .map(|(_, t)| t.naive_utc()),
                )),
                profile: Some(Profile {
                    role: if user == e { "admin" } else { "user" }.into(),
                    email_verified: user == b,
                    is_active: true,
                    version: now.naive_utc(),
                }),
            })
            .collect();
        Self {
            events,
            export,
            a,
            b,
            c,
            d,
            e,
            overdue_invoice: i1,
            today,
        }
    }
}

/// The owning services' rows in memory, paged by id as the Export* calls
/// page them (`next` = the last id of a full page).
#[derive(Debug, Clone, Default)]
pub struct MemoryExporter {
    pub plans: Vec<PlanRow>,
    pub users: Vec<UserFacts>,
    pub subscriptions: Vec<SubscriptionState>,
    pub payments: Vec<PaymentState>,
    pub invoices: Vec<InvoiceState>,
    pub conversations: Vec<ConversationFacts>,
    pub messages: Vec<MessageFact>,
    pub token_usage: Vec<TokenUsageFact>,
    /// Pages served so far.
    pub served: usize,
    /// Fail (as a lost connection would) once this many pages were served.
    pub fail_after: Option<usize>,
}

fn page_of<T: Clone>(
    rows: &[T],
    id: impl Fn(&T) -> Uuid,
    after: &str,
    limit: u32,
) -> (Vec<T>, String) {
    let mut sorted: Vec<T> = rows.to_vec();
    sorted.sort_by_key(|r| id(r));
    let start = if after.is_empty() {
        0
    } else {
        let after = Uuid::parse_str(after).unwrap();
        sorted.iter().take_while(|r| id(r) <= after).count()
    };
    let page: Vec<T> = sorted
        .iter()
        .skip(start)
        .take(limit as usize)
        .cloned()
        .collect();
    let next = if start + page.len() < sorted.len() {
        page.last().map(|r| id(r).to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    (page, next)
}

impl Exporter for MemoryExporter {
    async fn page(&mut self, source: Source, after: &str, limit: u32) -> anyhow::Result<Page> {
        if self.fail_after.is_some_and(|n| self.served >= n) {
            anyhow::bail!("connection reset");
        }
        self.served += 1;
        Ok(match source {
            Source::Plans => Page {
                rows: Rows::Plans(self.plans.clone()),
                next: String::new(),
            },
            Source::Users => {
                let (rows, next) = page_of(&self.users, |r| r.user_id, after, limit);
                Page {
                    rows: Rows::Users(rows),
                    next,
                }
            }
            Source::Subscriptions => {
                let (rows, next) = page_of(&self.subscriptions, |r| r.user_id, after, limit);
                Page {
                    rows: Rows::Subscriptions(rows),
                    next,
                }
            }
            Source::Payments => {
                let (rows, next) = page_of(&self.payments, |r| r.payment_id, after, limit);
                Page {
                    rows: Rows::Payments(rows),
                    next,
                }
            }
            Source::Invoices => {
                let (rows, next) = page_of(&self.invoices, |r| r.invoice_id, after, limit);
                Page {
                    rows: Rows::Invoices(rows),
                    next,
                }
            }
            Source::Conversations => {
                let (rows, next) =
                    page_of(&self.conversations, |r| r.conversation_id, after, limit);
                Page {
                    rows: Rows::Conversations(rows),
                    next,
                }
            }
            Source::Messages => {
                let (rows, next) = page_of(&self.messages, |r| r.message_id, after, limit);
                Page {
                    rows: Rows::Messages(rows),
                    next,
                }
            }
            Source::TokenUsage => {
                let (rows, next) = page_of(&self.token_usage, |r| r.usage_id, after, limit);
                Page {
                    rows: Rows::TokenUsage(rows),
                    next,
                }
            }
        })
    }
}
