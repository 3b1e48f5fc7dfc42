//! Path patterns of test mode: `*` stands for any run of characters (slashes included).

/// A path pattern. A glob (holding `*`) must match the whole path; plain text matches as
/// [`Pattern::matches_path`] says for the journal (substring) or [`Pattern::matches_exact`] for
/// fault rules (the whole path). Either way a path matches with or without its `.json`.
#[derive(Clone, Debug)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: &str) -> Pattern {
        Pattern(p.trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_glob(&self) -> bool {
        self.0.contains('*')
    }

    fn forms(path: &str) -> impl Iterator<Item = &str> {
        std::iter::once(path).chain(path.strip_suffix(".json"))
    }

    /// Substring, or glob when the pattern holds `*`.
    pub fn matches_path(&self, path: &str) -> bool {
        Self::forms(path).any(|p| {
            if self.is_glob() {
                glob(self.0.as_bytes(), p.as_bytes())
            } else {
                p.contains(self.0.as_str())
            }
        })
    }

    /// The whole path, or glob when the pattern holds `*`.
    pub fn matches_exact(&self, path: &str) -> bool {
        let pattern = self.0.strip_suffix(".json").unwrap_or(&self.0);
        Self::forms(path).any(|p| {
            glob(self.0.as_bytes(), p.as_bytes()) || glob(pattern.as_bytes(), p.as_bytes())
        })
    }
}

/// Whole-text match of `pattern` (with `*` wildcards) against `text`, in linear time.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings() {
        let p = Pattern::new("/api/v2/users/*/identities");
        assert!(p.matches_path("/api/v2/users/12/identities.json"));
        assert!(p.matches_exact("/api/v2/users/12/identities"));
        assert!(!p.matches_exact("/api/v2/users/12/identities/3"));
        let p = Pattern::new("create_or_update");
        assert!(p.matches_path("/api/v2/users/create_or_update_many.json"));
        assert!(!p.matches_exact("/api/v2/users/create_or_update"));
        let p = Pattern::new("/api/v2/users/create_or_update.json");
        assert!(p.matches_exact("/api/v2/users/create_or_update"));
        assert!(p.matches_exact("/api/v2/users/create_or_update.json"));
        assert!(!p.matches_exact("/api/v2/users/create_or_update_many"));
        assert!(Pattern::new("*").matches_exact("/anything/at/all"));
        assert!(Pattern::new("/api/*/count").matches_exact("/api/v2/users/count"));
        assert!(!Pattern::new("/api/*/count").matches_exact("/api/v2/users/counts"));
    }
}
