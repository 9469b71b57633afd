//! Analytics' backfill: every user, page by page (`ExportUsers`). Reads
//! only; the events tell analytics what changes after.

use aichat_db::page::ExportPage;

use crate::store::users;

use super::{Accounts, Error};

/// A page of users, and the `after` of the next page (`None` after the
/// last one).
pub struct UserPage {
    pub items: Vec<users::Exported>,
    pub next: Option<uuid::Uuid>,
}

impl Accounts {
    /// The users after `after` by id, `limit` of them (0: 500; at most
    /// 1000); `validation_failed` naming a malformed `after` or `limit`.
    pub async fn export_users(&self, after: &str, limit: u32) -> Result<UserPage, Error> {
        let page = ExportPage::parse(after, limit).map_err(Error::Validation)?;
        let mut conn = self.conn().await?;
        let items = users::export(&mut conn, page.after, page.limit).await?;
        let next = page.next(items.iter().map(|u| u.id));
        Ok(UserPage { items, next })
    }
}
