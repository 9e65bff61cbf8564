//! XML through quick-xml's writer:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <results>
//!   <row>
//!     <id>1</id>
//!     <name>Zürich</name>
//!   </row>
//! </results>
//! ```
//!
//! The document element is [`EncodeOptions::xml_root`]; each row is a `<row>` element with one
//! child per column, named after the column and made a valid XML name (see [`xml_name`]). A null
//! column is left out of its row, which keeps it apart from an empty string (`<name></name>`).
//! Cell text is what [`super::cell_text`] gives.

use std::io::{BufWriter, Write};

use arrow::datatypes::SchemaRef;
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::value::{json_encoder_options, text_columns};
use super::{EncodeError, EncodeOptions, Encoder, Sink};

/// The element that holds one row.
const ROW_ELEMENT: &str = "row";

/// Writes rows as XML elements, one batch at a time.
pub struct XmlEncoder {
    writer: Writer<BufWriter<Sink>>,
    options: EncodeOptions,
    json_options: EncoderOptions,
    root: String,
    column_elements: Vec<String>,
    started: bool,
}

impl XmlEncoder {
    pub fn new(options: &EncodeOptions, schema: SchemaRef, sink: Sink) -> Self {
        XmlEncoder {
            writer: Writer::new_with_indent(BufWriter::new(sink), b' ', 2),
            options: options.clone(),
            json_options: json_encoder_options(options),
            root: xml_name(&options.xml_root),
            column_elements: schema.fields().iter().map(|f| xml_name(f.name())).collect(),
            started: false,
        }
    }

    fn start_document(&mut self) -> Result<(), EncodeError> {
        if !self.started {
            self.writer
                .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
            self.writer
                .write_event(Event::Start(BytesStart::new(self.root.as_str())))?;
            self.started = true;
        }
        Ok(())
    }
}

impl Encoder for XmlEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.start_document()?;
        let mut columns = text_columns(batch, &self.options, &self.json_options)?;
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            self.writer
                .write_event(Event::Start(BytesStart::new(ROW_ELEMENT)))?;
            for (column, element) in columns.iter_mut().zip(&self.column_elements) {
                text.clear();
                if column.write(row, &mut text)? {
                    let escaped = escape_text(&text);
                    self.writer
                        .create_element(element.as_str())
                        .write_text_content(BytesText::from_escaped(escaped.as_str()))?;
                }
            }
            self.writer
                .write_event(Event::End(BytesEnd::new(ROW_ELEMENT)))?;
        }
        self.writer.get_mut().flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        self.start_document()?;
        self.writer
            .write_event(Event::End(BytesEnd::new(self.root.as_str())))?;
        self.writer.get_mut().write_all(b"\n")?;
        self.writer.get_mut().flush()?;
        Ok(())
    }
}

/// `name` as a valid XML element name: characters XML does not allow in a name (and `:`, which
/// would make a namespace prefix) become `_`, and an `_` is put in front of a name that would
/// start with a digit, `-` or `.`, be empty, or start with the reserved `xml`.
pub fn xml_name(name: &str) -> String {
    let mut element: String = name
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let needs_prefix = match element.chars().next() {
        None => true,
        Some(first) => {
            !is_name_start_char(first) || element.to_ascii_lowercase().starts_with("xml")
        }
    };
    if needs_prefix {
        element.insert(0, '_');
    }
    element
}

/// XML 1.0 `NameStartChar`, without `:`.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar`, without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Escapes element text. A carriage return becomes `&#13;` so parsers do not fold it into a
/// line feed; control characters XML 1.0 cannot carry at all become U+FFFD.
fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' | '\n' => escaped.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}
