//! One-time tokens mailed to users: `emailVerifications` and `passwordResets`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    Timestamp, now,
    schema::{email_verifications, password_resets},
};

/// Which kind of mailed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `emailVerifications`, 24 h.
    VerifyEmail,
    /// `passwordResets`, 1 h.
    ResetPassword,
}

/// A mailed token's row, whichever table it lives in.
#[derive(Debug, Clone)]
pub struct MailedToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    /// Verified / used already.
    pub consumed: bool,
    pub expires_at: Timestamp,
}

impl MailedToken {
    /// Unused and unexpired.
    pub fn usable(&self, at: Timestamp) -> bool {
        !self.consumed && self.expires_at > at
    }
}

/// Stores a new token and ends the user's earlier unused ones of the same
/// purpose (only the latest mail works).
pub async fn issue(
    conn: &mut AsyncPgConnection,
    purpose: Purpose,
    user_id: Uuid,
    email: &str,
    token_hash: &str,
    expires_at: Timestamp,
) -> QueryResult<()> {
    let at = now();
    match purpose {
        Purpose::VerifyEmail => {
            diesel::update(email_verifications::table)
                .filter(email_verifications::user_id.eq(user_id))
                .filter(email_verifications::is_verified.eq(false))
                .filter(email_verifications::expires_at.gt(at))
                .set((
                    email_verifications::expires_at.eq(at),
                    email_verifications::updated_at.eq(at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(email_verifications::table)
                .values((
                    email_verifications::id.eq(Uuid::now_v7()),
                    email_verifications::user_id.eq(user_id),
                    email_verifications::email.eq(email),
                    email_verifications::token.eq(token_hash),
                    email_verifications::expires_at.eq(expires_at),
                    email_verifications::created_at.eq(at),
                    email_verifications::updated_at.eq(at),
                ))
                .execute(conn)
                .await?;
        }
        Purpose::ResetPassword => {
            diesel::update(password_resets::table)
                .filter(password_resets::user_id.eq(user_id))
                .filter(password_resets::is_used.eq(false))
                .filter(password_resets::expires_at.gt(at))
                .set(password_resets::expires_at.eq(at))
                .execute(conn)
                .await?;
            diesel::insert_into(password_resets::table)
                .values((
                    password_resets::id.eq(Uuid::now_v7()),
                    password_resets::user_id.eq(user_id),
                    password_resets::email.eq(email),
                    password_resets::token.eq(token_hash),
                    password_resets::expires_at.eq(expires_at),
                    password_resets::created_at.eq(at),
                ))
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// Counts one more presentation of the token and returns its row, locked
/// for the rest of the transaction; `None` when no such token exists.
pub async fn present(
    conn: &mut AsyncPgConnection,
    purpose: Purpose,
    token_hash: &str,
) -> QueryResult<Option<MailedToken>> {
    match purpose {
        Purpose::VerifyEmail => diesel::update(email_verifications::table)
            .filter(email_verifications::token.eq(token_hash))
            .set((
                email_verifications::attempt_count.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Integer>,
                >(
                    "COALESCE(attemptcount, 0) + 1"
                )),
                email_verifications::updated_at.eq(now()),
            ))
            .returning((
                email_verifications::id,
                email_verifications::user_id,
                email_verifications::email,
                email_verifications::is_verified,
                email_verifications::expires_at,
            ))
            .get_result::<(Uuid, Uuid, String, Option<bool>, Timestamp)>(conn)
            .await
            .optional(),
        Purpose::ResetPassword => diesel::update(password_resets::table)
            .filter(password_resets::token.eq(token_hash))
            .set(password_resets::attempt_count.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Integer>,
            >("COALESCE(attemptcount, 0) + 1")))
            .returning((
                password_resets::id,
                password_resets::user_id,
                password_resets::email,
                password_resets::is_used,
                password_resets::expires_at,
            ))
            .get_result::<(Uuid, Uuid, String, Option<bool>, Timestamp)>(conn)
            .await
            .optional(),
    }
    .map(|row| {
        row.map(|(id, user_id, email, consumed, expires_at)| MailedToken {
            id,
            user_id,
            email,
            consumed: consumed == Some(true),
            expires_at,
        })
    })
}

/// Marks the token used; `false` if it was consumed meanwhile.
pub async fn consume(
    conn: &mut AsyncPgConnection,
    purpose: Purpose,
    id: Uuid,
) -> QueryResult<bool> {
    let at = now();
    let changed = match purpose {
        Purpose::VerifyEmail => {
            diesel::update(email_verifications::table.find(id))
                .filter(email_verifications::is_verified.eq(false))
                .set((
                    email_verifications::is_verified.eq(true),
                    email_verifications::verified_at.eq(at),
                    email_verifications::updated_at.eq(at),
                ))
                .execute(conn)
                .await?
        }
        Purpose::ResetPassword => {
            diesel::update(password_resets::table.find(id))
                .filter(password_resets::is_used.eq(false))
                .set((
                    password_resets::is_used.eq(true),
                    password_resets::used_at.eq(at),
                ))
                .execute(conn)
                .await?
        }
    };
    Ok(changed == 1)
}

/// Deletes up to `limit` mailed tokens of `purpose` that expired before
/// `before` (used ones included: their use is recorded on the user).
/// Returns how many it deleted.
pub async fn prune_expired(
    conn: &mut AsyncPgConnection,
    purpose: Purpose,
    before: Timestamp,
    limit: i64,
) -> QueryResult<usize> {
    // diesel cannot express a subquery on the table it deletes from.
    let sql = match purpose {
        Purpose::VerifyEmail => {
            "DELETE FROM emailVerifications WHERE id IN (SELECT id FROM emailVerifications \
             WHERE expiresAt < $1 LIMIT $2)"
        }
        Purpose::ResetPassword => {
            "DELETE FROM passwordResets WHERE id IN (SELECT id FROM passwordResets \
             WHERE expiresAt < $1 LIMIT $2)"
        }
    };
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Timestamp, _>(before)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(conn)
        .await
}
