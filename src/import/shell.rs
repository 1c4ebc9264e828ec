//! Shell lines as a Markdown runbook writes them: `$ ` prompts, comments, `\` continuations, and
//! commands split at `;` and `&&`, each a pipeline of words. This only reads text: nothing in it
//! can run, expand or substitute anything.

/// Why a command with a here-document is not imported: its text spans the lines after it.
pub const HEREDOC: &str = "it feeds a here-document (`<<`), which a one-line command cannot hold";

/// One command of a fence: a pipeline, with where it came from.
#[derive(Debug, Clone)]
pub struct Command {
    /// The source line it starts on (1-based, in the Markdown file).
    pub line: usize,
    /// As written, on one line (continuations joined).
    pub text: String,
    /// The comment lines just above it, joined: what the author said it does.
    pub comment: Option<String>,
    /// The pipeline's stages, each a list of words.
    pub stages: Vec<Vec<Word>>,
    /// A construct the importer does not read (a redirection, `$(…)`, `||`, `&`, a heredoc): the
    /// command can only become a shell action, and this says why.
    pub unread: Option<&'static str>,
}

/// A word after quote removal, and whether any of it was quoted or escaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub value: String,
    /// As written, quotes and all.
    pub raw: String,
    pub quoted: bool,
    /// Whether any of it was in single quotes, where the shell expands nothing.
    pub single: bool,
}

impl Word {
    /// A word that needs no quotes.
    pub fn plain(s: &str) -> Word {
        Word {
            value: s.into(),
            raw: s.into(),
            quoted: false,
            single: false,
        }
    }
}

/// What a fence holds: its commands, and comments that no command follows.
#[derive(Debug, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    pub notes: Vec<String>,
}

/// How the fence marks its commands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prompts {
    /// Every line is shell (a `bash` fence without prompts).
    None,
    /// Only lines after `$ ` (or a `console` fence's `# `) are commands; the rest is output.
    Marked { root_hash: bool },
}

/// Reads a fence's text; `first_line` is the Markdown line of its first content line.
pub fn read(text: &str, first_line: usize, prompts: Prompts) -> Script {
    let source = strip_prompts(text, prompts);
    Lexer::new(&source, first_line).run()
}

/// Whether a fence marks its commands with `$ ` prompts.
pub fn has_prompts(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("$ ") || l.trim() == "$")
}

/// Blanks output lines and removes prompts, keeping one line per source line.
fn strip_prompts(text: &str, prompts: Prompts) -> String {
    let Prompts::Marked { root_hash } = prompts else {
        return text.to_string();
    };
    let mut out = String::new();
    let mut continued = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let command = if continued {
            Some(trimmed.strip_prefix("> ").unwrap_or(line))
        } else if let Some(rest) = trimmed.strip_prefix("$ ") {
            Some(rest)
        } else if root_hash
            && let Some(rest) = trimmed.strip_prefix("# ")
            && rest.starts_with(|c: char| c.is_ascii_lowercase())
        {
            // A root prompt; `# Check the pods` is a comment.
            Some(rest)
        } else {
            None
        };
        if let Some(command) = command {
            out.push_str(command);
            continued = command.ends_with('\\');
        }
        out.push('\n');
    }
    out
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    script: Script,
    /// Comment lines since the last command.
    comments: Vec<String>,
    stages: Vec<Vec<Word>>,
    words: Vec<Word>,
    start_line: usize,
    text: String,
    unread: Option<&'static str>,
    heredoc: Option<String>,
    /// Whether the line being read has held a word or a comment.
    busy: bool,
}

impl Lexer {
    fn new(source: &str, first_line: usize) -> Self {
        Lexer {
            chars: source.chars().collect(),
            at: 0,
            line: first_line,
            script: Script::default(),
            comments: Vec::new(),
            stages: Vec::new(),
            words: Vec::new(),
            start_line: first_line,
            text: String::new(),
            unread: None,
            heredoc: None,
            busy: false,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn run(mut self) -> Script {
        while let Some(c) = self.peek(0) {
            match c {
                '\n' => {
                    self.at += 1;
                    // Comments a blank line ends belong to no command: they are notes.
                    if !self.busy && !self.comments.is_empty() {
                        self.script.notes.push(self.comments.join(" "));
                        self.comments.clear();
                    }
                    self.busy = false;
                    // A line that ends in `|` goes on on the next one.
                    if !self.words.is_empty() || self.stages.is_empty() {
                        self.end_command();
                    }
                    self.line += 1;
                    if let Some(delimiter) = self.heredoc.take() {
                        self.skip_heredoc(&delimiter);
                    }
                }
                ' ' | '\t' | '\r' => {
                    self.at += 1;
                    self.echo(' ');
                }
                '\\' if self.peek(1) == Some('\n') => {
                    self.at += 2;
                    self.line += 1;
                    self.echo(' ');
                }
                '#' => self.comment(),
                ';' => {
                    self.at += 1;
                    self.end_command();
                }
                '&' if self.peek(1) == Some('&') => {
                    self.at += 2;
                    self.end_command();
                }
                '&' if self.peek(1) == Some('>') => self.redirect(),
                '&' => {
                    self.at += 1;
                    self.unread("it runs in the background (`&`)");
                    self.echo('&');
                }
                '|' if self.peek(1) == Some('|') => {
                    self.at += 2;
                    self.unread("it runs a second command when the first fails (`||`)");
                    self.echo_str("||");
                }
                '|' => {
                    self.at += 1;
                    self.echo('|');
                    let words = std::mem::take(&mut self.words);
                    self.stages.push(words);
                }
                '>' | '<' => self.redirect(),
                '0'..='9' if self.digit_redirect() => self.redirect(),
                '(' | ')' => {
                    self.at += 1;
                    self.unread("it uses a subshell or a function (`( … )`)");
                    self.echo(c);
                }
                _ => self.word(),
            }
        }
        self.end_command();
        if !self.comments.is_empty() {
            self.script.notes.push(self.comments.join(" "));
        }
        self.script
    }

    /// Adds to the command's text as written; blanks between words become one space.
    fn echo(&mut self, c: char) {
        if !c.is_whitespace() {
            self.text.push(c);
        } else if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.text.push(' ');
        }
    }

    fn echo_str(&mut self, s: &str) {
        for c in s.chars() {
            self.echo(c);
        }
    }

    fn unread(&mut self, why: &'static str) {
        self.unread.get_or_insert(why);
    }

    /// `2>` or `2>&1`: a redirection that starts with a file descriptor.
    fn digit_redirect(&self) -> bool {
        let mut i = 0;
        while self.peek(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        matches!(self.peek(i), Some('>' | '<')) && self.words_boundary()
    }

    fn words_boundary(&self) -> bool {
        self.at == 0
            || matches!(
                self.chars.get(self.at - 1),
                Some(' ' | '\t' | '\n' | ';' | '|')
            )
    }

    /// A redirection: error output thrown away is harmless; anything else writes or reads a file.
    fn redirect(&mut self) {
        let start = self.at;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit() || c == '&') {
            self.at += 1;
        }
        let mut op = String::new();
        while let Some(c @ ('>' | '<' | '&')) = self.peek(0) {
            op.push(c);
            self.at += 1;
        }
        let prefix: String = self.chars[start..self.at].iter().collect();
        if op.starts_with("<<") && !op.starts_with("<<<") {
            self.skip_blanks();
            let delimiter = self.take_word().value;
            self.heredoc = Some(delimiter.trim_start_matches('-').to_string());
            self.unread(HEREDOC);
            self.echo_str(&prefix);
            return;
        }
        self.skip_blanks();
        if prefix.ends_with('&') && self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            // `2>&1`: one descriptor onto another.
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1;
            }
        } else {
            self.take_word();
        }
        // As written, so the command the runbook runs is the page's.
        let written: String = self.chars[start..self.at].iter().collect();
        let compact: String = written.split_whitespace().collect();
        let harmless =
            compact.ends_with(">/dev/null") || ["2>&1", "1>&2", ">&2"].contains(&compact.as_str());
        if !harmless {
            self.unread(if prefix.contains('<') {
                "it reads its input from a file (`<`)"
            } else {
                "it writes to a file (`>`)"
            });
        }
        self.echo(' ');
        self.text.push_str(&written);
        self.echo(' ');
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.at += 1;
        }
    }

    fn skip_heredoc(&mut self, delimiter: &str) {
        while self.at < self.chars.len() {
            let end = self.chars[self.at..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(self.chars.len(), |n| self.at + n);
            let line: String = self.chars[self.at..end].iter().collect();
            self.at = (end + 1).min(self.chars.len());
            self.line += 1;
            if line.trim() == delimiter {
                return;
            }
        }
    }

    /// A `#` that starts a word: a comment to the end of the line.
    fn comment(&mut self) {
        self.busy = true;
        let mut text = String::new();
        self.at += 1;
        while let Some(c) = self.peek(0).filter(|&c| c != '\n') {
            text.push(c);
            self.at += 1;
        }
        let text = text.trim().trim_start_matches('#').trim().to_string();
        if !text.is_empty() {
            self.comments.push(text);
        }
    }

    fn word(&mut self) {
        self.busy = true;
        if self.words.is_empty() && self.stages.is_empty() {
            self.start_line = self.line;
        }
        let word = self.take_word();
        // Verbatim: blanks inside quotes are the command's.
        self.text.push_str(&word.raw);
        self.words.push(word);
    }

    /// Reads one word, removing quotes; marks constructs that would run or expand something.
    fn take_word(&mut self) -> Word {
        let start = self.at;
        let mut word = Word {
            value: String::new(),
            raw: String::new(),
            quoted: false,
            single: false,
        };
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\n' | ';' | '|' | '<' | '>' | '(' | ')' => break,
                '&' => break,
                '\\' => {
                    word.quoted = true;
                    match self.peek(1) {
                        Some('\n') => {
                            self.at += 2;
                            self.line += 1;
                        }
                        Some(next) => {
                            word.value.push(next);
                            self.at += 2;
                        }
                        None => self.at += 1,
                    }
                }
                '\'' => {
                    word.quoted = true;
                    word.single = true;
                    self.at += 1;
                    while let Some(q) = self.peek(0) {
                        self.at += 1;
                        if q == '\'' {
                            break;
                        }
                        if q == '\n' {
                            self.line += 1;
                        }
                        word.value.push(q);
                    }
                }
                '"' => {
                    word.quoted = true;
                    self.at += 1;
                    while let Some(q) = self.peek(0) {
                        self.at += 1;
                        match q {
                            '"' => break,
                            '\\' if matches!(self.peek(0), Some('"' | '\\' | '$' | '`')) => {
                                word.value.push(self.peek(0).unwrap_or('\\'));
                                self.at += 1;
                            }
                            '\\' if self.peek(0) == Some('\n') => {
                                self.at += 1;
                                self.line += 1;
                            }
                            '$' if self.peek(0) == Some('(') => {
                                self.unread("it runs a command inside another (`$(…)`)");
                                word.value.push(q);
                            }
                            '`' => {
                                self.unread("it runs a command inside another (backquotes)");
                                word.value.push(q);
                            }
                            '\n' => {
                                self.line += 1;
                                word.value.push(q);
                            }
                            _ => word.value.push(q),
                        }
                    }
                }
                '$' if self.peek(1) == Some('\'') => {
                    // bash reads `$'…'` with escapes that sh does not: its end is not certain.
                    self.unread("it uses $'…' quoting");
                    word.value.push(c);
                    self.at += 1;
                }
                '$' if self.peek(1) == Some('(') => {
                    self.unread("it runs a command inside another (`$(…)`)");
                    word.value.push(c);
                    self.at += 1;
                }
                '`' => {
                    self.unread("it runs a command inside another (backquotes)");
                    word.value.push(c);
                    self.at += 1;
                }
                _ => {
                    word.value.push(c);
                    self.at += 1;
                }
            }
        }
        word.raw = self.chars[start..self.at].iter().collect();
        word
    }

    fn end_command(&mut self) {
        let words = std::mem::take(&mut self.words);
        if !words.is_empty() || !self.stages.is_empty() {
            self.stages.push(words);
        }
        let stages = std::mem::take(&mut self.stages);
        let text = std::mem::take(&mut self.text);
        let unread = self.unread.take();
        let start_line = self.start_line;
        if stages.iter().all(|s| s.is_empty()) {
            return;
        }
        let text = text
            .trim()
            .trim_end_matches(['|', ';'])
            .trim_end()
            .to_string();
        let comment = (!self.comments.is_empty()).then(|| self.comments.join(" "));
        self.comments.clear();
        self.script.commands.push(Command {
            line: start_line,
            text,
            comment,
            stages: stages.into_iter().filter(|s| !s.is_empty()).collect(),
            unread,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Command {
        let script = read(text, 1, Prompts::None);
        assert_eq!(script.commands.len(), 1, "{:?}", script.commands);
        script.commands[0].clone()
    }

    #[test]
    fn a_command_is_kept_as_written() {
        assert_eq!(
            one("kubectl describe pod x 2>&1").text,
            "kubectl describe pod x 2>&1"
        );
        assert_eq!(one("grep \"a\tb  c\"   f").text, "grep \"a\tb  c\" f");
        assert_eq!(one("cat pass\\\nwd").text, "cat pass\\\nwd");
        let c = one("kubectl get pods \\\n  -n ns |\n grep x");
        assert_eq!(
            (c.text.as_str(), c.stages.len(), c.line),
            ("kubectl get pods -n ns | grep x", 2, 1)
        );
    }

    #[test]
    fn what_the_importer_does_not_read_is_marked() {
        for text in [
            "echo $'\\'' ; rm -f /tmp/v # '",
            "a || b",
            "a &",
            "echo $(id)",
            "echo `id`",
            "x > f",
            "x < f",
            "( x )",
        ] {
            assert!(
                one(text).unread.is_some()
                    || read(text, 1, Prompts::None)
                        .commands
                        .iter()
                        .any(|c| c.unread.is_some()),
                "{text}"
            );
        }
        assert_eq!(one("cat <<EOF\nbody\nEOF").unread, Some(HEREDOC));
        assert!(one("x 2>/dev/null").unread.is_none());
    }

    #[test]
    fn prompts_comments_and_notes() {
        let script = read(
            "$ df -h\nFilesystem 100G\n# not a prompt here\n$ free",
            10,
            Prompts::Marked { root_hash: false },
        );
        let texts: Vec<&str> = script.commands.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["df -h", "free"]);
        assert_eq!(script.commands[1].line, 13);
        let script = read("# Check it\nls\n\n# a note\n", 1, Prompts::None);
        assert_eq!(script.commands[0].comment.as_deref(), Some("Check it"));
        assert_eq!(script.notes, ["a note"]);
    }
}
