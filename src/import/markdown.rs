//! A Markdown page as the importer reads it: its headings in order, each with the prose, lists,
//! tables and fenced blocks under it, and the line each starts on.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

#[derive(Debug, Default)]
pub struct Section {
    /// 0 for what comes before the first heading.
    pub level: usize,
    pub heading: String,
    pub line: usize,
    pub blocks: Vec<Block>,
}

#[derive(Debug)]
pub enum Block {
    /// A paragraph or a list item's own words; a list item starts with `- ` or `1. `.
    Text(String),
    Code(Code),
    Table(Vec<Vec<String>>),
}

#[derive(Debug)]
pub struct Code {
    /// The info string's first word, lowercased (`bash`, `console`, empty).
    pub lang: String,
    pub text: String,
    /// The Markdown line of the block's first content line.
    pub first_line: usize,
    /// The words of the list item it sits in, or of the paragraph just before it.
    pub label: Option<String>,
}

/// Reads a page into sections.
pub fn read(page: &str) -> Vec<Section> {
    let breaks: Vec<usize> = page.match_indices('\n').map(|(at, _)| at).collect();
    let line_of = |offset: usize| breaks.partition_point(|&at| at < offset) + 1;
    let mut sections = vec![Section::default()];
    let mut inline: Option<String> = None;
    // Open list items: their marker and the words they hold so far.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut items: Vec<(String, String)> = Vec::new();
    let mut code: Option<Code> = None;
    let mut table: Option<Vec<Vec<String>>> = None;
    let mut last_label: Option<String> = None;
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(page, options).into_offset_iter() {
        let section = sections.last_mut().expect("there is always a section");
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                flush_items(&mut items, section);
                sections.push(Section {
                    level: level as usize,
                    line: line_of(range.start),
                    ..Section::default()
                });
                inline = Some(String::new());
                last_label = None;
            }
            Event::End(TagEnd::Heading(_)) => {
                section.heading = inline.take().unwrap_or_default().trim().to_string();
            }
            Event::Start(Tag::Paragraph) if items.is_empty() => inline = Some(String::new()),
            Event::End(TagEnd::Paragraph) if items.is_empty() => {
                let text = inline.take().unwrap_or_default().trim().to_string();
                if !text.is_empty() {
                    last_label = Some(text.clone());
                    section.blocks.push(Block::Text(text));
                }
            }
            Event::Start(Tag::List(start)) => {
                last_label = flush_items(&mut items, section).or(last_label);
                lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Item) => {
                flush_items(&mut items, section);
                let depth = lists.len().saturating_sub(1);
                let marker = match lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".into(),
                };
                items.push((format!("{}{marker}", "  ".repeat(depth)), String::new()));
            }
            Event::End(TagEnd::Item) => {
                last_label = flush_items(&mut items, section).or(last_label);
                items.pop();
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let (lang, first_line) = match kind {
                    CodeBlockKind::Fenced(info) => (
                        info.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .trim_matches(|c| c == '{' || c == '}' || c == '.')
                            .to_ascii_lowercase(),
                        line_of(range.start) + 1,
                    ),
                    CodeBlockKind::Indented => (String::new(), line_of(range.start)),
                };
                let label = items
                    .last()
                    .map(|(_, words)| words.trim().to_string())
                    .filter(|w| !w.is_empty())
                    .or_else(|| last_label.clone());
                flush_items(&mut items, section);
                code = Some(Code {
                    lang,
                    text: String::new(),
                    first_line,
                    label,
                });
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(code) = code.take() {
                    section.blocks.push(Block::Code(code));
                }
            }
            Event::Start(Tag::Table(_)) => table = Some(Vec::new()),
            Event::End(TagEnd::Table) => {
                if let Some(rows) = table.take() {
                    section.blocks.push(Block::Table(rows));
                }
            }
            Event::Start(Tag::TableHead | Tag::TableRow) => {
                if let Some(rows) = &mut table {
                    rows.push(Vec::new());
                }
            }
            Event::Start(Tag::TableCell) => inline = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                let cell = inline.take().unwrap_or_default().trim().to_string();
                if let Some(row) = table.as_mut().and_then(|rows| rows.last_mut()) {
                    row.push(cell);
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(code) = &mut code {
                    code.text.push_str(&text);
                } else {
                    push_words(&mut inline, &mut items, &text);
                }
            }
            Event::SoftBreak | Event::HardBreak => push_words(&mut inline, &mut items, " "),
            _ => {}
        }
    }
    let last = sections.last_mut().expect("there is always a section");
    flush_items(&mut items, last);
    sections.retain(|s| s.level > 0 || !s.blocks.is_empty());
    sections
}

fn push_words(inline: &mut Option<String>, items: &mut [(String, String)], text: &str) {
    if let Some(words) = inline {
        words.push_str(text);
    } else if let Some((_, words)) = items.last_mut() {
        words.push_str(text);
    }
}

/// The words of the innermost open list item become a line of text (before a nested block).
/// Returns the item's words, if it had any.
fn flush_items(items: &mut [(String, String)], section: &mut Section) -> Option<String> {
    let (marker, words) = items.last_mut()?;
    let text = words.split_whitespace().collect::<Vec<_>>().join(" ");
    words.clear();
    if text.is_empty() {
        return None;
    }
    section.blocks.push(Block::Text(format!("{marker}{text}")));
    Some(text)
}
