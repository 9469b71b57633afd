//! Stripe's request encoding: `application/x-www-form-urlencoded` with
//! nested parameters written in brackets (docs.stripe.com/api, "Request
//! encoding"; the curl examples of each call): a hash is `metadata[userId]=…`,
//! an array of hashes is indexed (`line_items[0][price]=…`), an array of
//! strings is `expand[]=…`. The same encoding carries a GET's query.

/// The parameters of one request, in order, keys already nested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key=value`; `key` may already be nested (`line_items[0][price]`).
    pub fn field(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.0.push((key.into(), value.to_string()));
        self
    }

    /// `key=value` when there is a value.
    pub fn optional(self, key: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    /// A hash: `key[name]=value` for each entry.
    pub fn map<'a>(
        mut self,
        key: &str,
        entries: impl IntoIterator<Item = (&'a str, impl ToString)>,
    ) -> Self {
        for (name, value) in entries {
            self = self.field(format!("{key}[{name}]"), value);
        }
        self
    }

    /// An array of strings: `key[]=value` for each item.
    pub fn list(mut self, key: &str, items: impl IntoIterator<Item = impl ToString>) -> Self {
        for item in items {
            self = self.field(format!("{key}[]"), item);
        }
        self
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The encoded body (or query string): brackets and all other reserved
    /// characters percent-encoded, spaces as `+`.
    pub fn encode(&self) -> String {
        // Serialising a list of string pairs cannot fail.
        serde_urlencoded::to_string(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_are_bracketed_and_percent_encoded() {
        let form = Form::new()
            .field("mode", "subscription")
            .field("line_items[0][price]", "price_123")
            .field("line_items[0][quantity]", 1)
            .map("metadata", [("userId", "u 1&2")])
            .list("expand", ["data.product", "customer"])
            .optional("customer", None::<&str>);
        assert_eq!(
            form.encode(),
            "mode=subscription\
             &line_items%5B0%5D%5Bprice%5D=price_123\
             &line_items%5B0%5D%5Bquantity%5D=1\
             &metadata%5BuserId%5D=u+1%262\
             &expand%5B%5D=data.product\
             &expand%5B%5D=customer"
        );
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(&form.encode()).unwrap();
        assert_eq!(decoded, form.pairs());
    }
}
