//! `server.access_log`: a format that writes nothing.

use super::super::KeyPath;
use super::Validator;

impl Validator<'_> {
    /// A format of nothing but blanks and line breaks logs an empty line per request (the
    /// line's own newline is added): nothing to read. API Gateway refuses a format
    /// without `$context.requestId` too; Portico only asks for some text.
    pub(super) fn access_log(&mut self) {
        let format = &self.cfg.server.access_log.format;
        if format.trim().is_empty() {
            let at = KeyPath::root()
                .key("server")
                .key("access_log")
                .key("format");
            self.error(
                &at,
                "is empty: each line would be empty; give a format (with $context.requestId, as API Gateway asks), or remove the key for the default",
            );
        }
    }
}
