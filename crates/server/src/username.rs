//! Usernames have one normal form for lookup and uniqueness, shared by the
//! sign-in page and the admin commands: trimmed and lowercase.

/// The normal form of a typed username.
pub fn normalize(typed: &str) -> String {
    typed.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimmed_and_lowercase() {
        assert_eq!(
            super::normalize("  Alice@Example.COM \t"),
            "alice@example.com"
        );
    }
}
