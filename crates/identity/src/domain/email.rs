//! Email addresses, normalised so one mailbox is one account.

/// A syntactically valid address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses what a user typed. Deliberately simple (one `@`, a dotted
    /// domain, no spaces, RFC 5321 lengths): the verification mail is the
    /// real test of an address.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".to_owned());
        }
        if email.chars().count() > 254 {
            return Err("must be at most 254 characters".to_owned());
        }
        let invalid = || Err("is not a valid email address".to_owned());
        let Some((local, domain)) = email.split_once('@') else {
            return invalid();
        };
        if local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
        {
            return invalid();
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            " ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@.example.com",
            "ada@example.com.",
            "a da@example.com",
            "ada@exa mple.com",
            "<ada@example.com>",
            "ada..b@example.com",
            "ada@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
        let longer = format!("a@{}.com", "b".repeat(260));
        assert!(Email::parse(&longer).is_err());
    }

    #[test]
    fn ordinary_addresses_pass() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y-z@ex-ample.io",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} was refused");
        }
    }
}
