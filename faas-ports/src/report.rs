//! Walking an error's cause chain: the one helper of the workspace for it.
//!
//! Error types of this workspace keep their cause as a `source` and do not
//! repeat it in their own message, so a report that walks the chain names
//! each cause once. Some libraries do repeat their source in their message;
//! [`Report`] skips a cause whose text the report already holds.

use std::error::Error;
use std::fmt;

/// The error and its sources, outermost first.
pub fn causes<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// The innermost error of the chain, which names the actual failure
/// ("Connection refused") rather than the layer that saw it.
pub fn root_cause<'a>(error: &'a (dyn Error + 'static)) -> &'a (dyn Error + 'static) {
    causes(error).last().unwrap_or(error)
}

/// The first error of type `T` in the chain (the error itself included).
pub fn find_cause<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    causes(error).find_map(|e| e.downcast_ref::<T>())
}

/// Displays an error with its whole cause chain, `outer: cause: root`, each
/// cause once. For logs and start-up messages: `error = %Report(&e)`.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        for cause in causes(self.0).skip(1) {
            let cause_text = cause.to_string();
            if !cause_text.is_empty() && !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
        }
        f.write_str(&text)
    }
}

/// [`Report`] as a string.
pub fn report(error: &(dyn Error + 'static)) -> String {
    Report(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: &'static str,
        #[source]
        source: Option<Box<dyn Error + Send + Sync>>,
    }

    fn chain(messages: &[&'static str]) -> Layer {
        let mut error: Option<Layer> = None;
        for message in messages.iter().rev() {
            error = Some(Layer {
                message,
                source: error.map(|e| Box::new(e) as Box<dyn Error + Send + Sync>),
            });
        }
        error.unwrap_or(Layer {
            message: "",
            source: None,
        })
    }

    #[test]
    fn report_names_each_cause_once() {
        let cases: &[(&[&'static str], &str)] = &[
            (&["alone"], "alone"),
            (&["connecting", "refused"], "connecting: refused"),
            (&["a", "b", "c"], "a: b: c"),
            // A library that repeats its source in its own message.
            (&["client error: refused", "refused"], "client error: refused"),
            (&["outer", "", "root"], "outer: root"),
        ];
        for (messages, expected) in cases {
            assert_eq!(report(&chain(messages)), *expected, "{messages:?}");
        }
    }

    #[test]
    fn root_and_find() {
        let error = chain(&["a", "b", "c"]);
        assert_eq!(root_cause(&error).to_string(), "c");
        assert_eq!(causes(&error).count(), 3);
        let outer = Layer {
            message: "outer",
            source: Some(Box::new(std::io::Error::other("disk"))),
        };
        let io = find_cause::<std::io::Error>(&outer).map(ToString::to_string);
        assert_eq!(io.as_deref(), Some("disk"));
        assert!(find_cause::<std::fmt::Error>(&outer).is_none());
    }
}
