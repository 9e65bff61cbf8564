//! Table layouts for people to read: an HTML `<table>`, a Markdown table and tab-separated text
//! (Looker's `html`, `md` and `txt`). Each layout is three tera templates rendered as the result
//! streams: `head` once, `rows` for every batch, `foot` at the end.
//!
//! Cell text is what [`super::cell_text`] gives, with nulls as [`EncodeOptions::null_text`].
//! HTML cells are escaped by tera's autoescaping. Markdown cells escape `\` and `|` and turn line
//! breaks into `<br>`. Text cells use PostgreSQL's text-format escapes (`\\`, `\t`, `\n`, `\r`) so
//! each row stays on one line.

use std::borrow::Cow;
use std::io::{BufWriter, Write};

use arrow::datatypes::SchemaRef;
use arrow::json::writer::EncoderOptions;
use arrow::record_batch::RecordBatch;
use tera::{Context, Tera};

use super::value::{json_encoder_options, text_columns};
use super::{EncodeError, EncodeOptions, Encoder, Sink};

/// Which table layout a [`TableEncoder`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableLayout {
    Html,
    Markdown,
    Text,
}

/// The three templates of each layout. A template's name ends in its layout's file extension:
/// tera autoescapes `.html` templates and no others.
const TEMPLATES: [(&str, &str); 9] = [
    (
        "head.html",
        "<table>\n\
         {% if caption %}<caption>{{ caption }}</caption>\n{% endif %}\
         {% if header %}<thead>\n<tr>{% for name in columns %}<th>{{ name }}</th>{% endfor %}</tr>\n</thead>\n{% endif %}\
         <tbody>\n",
    ),
    (
        "rows.html",
        "{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>\n{% endfor %}",
    ),
    ("foot.html", "</tbody>\n</table>\n"),
    (
        "head.md",
        "|{% for name in columns %} {{ name }} |{% endfor %}{{ eol }}\
         |{% for name in columns %} --- |{% endfor %}{{ eol }}",
    ),
    (
        "rows.md",
        "{% for row in rows %}|{% for cell in row %} {{ cell }} |{% endfor %}{{ eol }}{% endfor %}",
    ),
    ("foot.md", ""),
    (
        "head.txt",
        "{% if header %}{{ columns | join(sep=\"\t\") }}{{ eol }}{% endif %}",
    ),
    (
        "rows.txt",
        "{% for row in rows %}{{ row | join(sep=\"\t\") }}{{ eol }}{% endfor %}",
    ),
    ("foot.txt", ""),
];

impl TableLayout {
    fn extension(self) -> &'static str {
        match self {
            TableLayout::Html => "html",
            TableLayout::Markdown => "md",
            TableLayout::Text => "txt",
        }
    }

    /// Whether the layout has a header row; Markdown cannot leave it out.
    fn has_header(self, options: &EncodeOptions) -> bool {
        options.header || self == TableLayout::Markdown
    }

    /// Escapes the characters the layout gives meaning to; HTML is left to tera.
    fn escape<'t>(self, text: &'t str) -> Cow<'t, str> {
        let special: &[char] = match self {
            TableLayout::Html => return Cow::Borrowed(text),
            TableLayout::Markdown => &['\\', '|', '\r', '\n'],
            TableLayout::Text => &['\\', '\t', '\r', '\n'],
        };
        if !text.contains(special) {
            return Cow::Borrowed(text);
        }
        let mut escaped = String::with_capacity(text.len() + 8);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (self, c) {
                (_, '\\') => escaped.push_str("\\\\"),
                (TableLayout::Markdown, '|') => escaped.push_str("\\|"),
                (TableLayout::Markdown, '\r') => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    escaped.push_str("<br>");
                }
                (TableLayout::Markdown, '\n') => escaped.push_str("<br>"),
                (TableLayout::Text, '\t') => escaped.push_str("\\t"),
                (TableLayout::Text, '\r') => escaped.push_str("\\r"),
                (TableLayout::Text, '\n') => escaped.push_str("\\n"),
                (_, c) => escaped.push(c),
            }
        }
        Cow::Owned(escaped)
    }
}

/// Writes rows as an HTML, Markdown or text table, one batch at a time.
pub struct TableEncoder {
    layout: TableLayout,
    templates: Tera,
    sink: BufWriter<Sink>,
    options: EncodeOptions,
    json_options: EncoderOptions,
    schema: SchemaRef,
    started: bool,
}

impl TableEncoder {
    pub fn new(
        layout: TableLayout,
        options: &EncodeOptions,
        schema: SchemaRef,
        sink: Sink,
    ) -> Result<Self, EncodeError> {
        let mut templates = Tera::default();
        templates.add_raw_templates(TEMPLATES)?;
        Ok(TableEncoder {
            layout,
            templates,
            sink: BufWriter::new(sink),
            options: options.clone(),
            json_options: json_encoder_options(options),
            schema,
            started: false,
        })
    }

    fn render(&mut self, part: &str, context: &Context) -> Result<(), EncodeError> {
        let name = format!("{part}.{}", self.layout.extension());
        self.templates.render_to(&name, context, &mut self.sink)?;
        Ok(())
    }

    fn context(&self) -> Context {
        let mut context = Context::new();
        context.insert("eol", self.options.line_ending.as_str());
        context
    }

    /// Every cell of `batch` as escaped text, row by row, nulls as `null_text`.
    fn cells(&self, batch: &RecordBatch) -> Result<Vec<Vec<String>>, EncodeError> {
        let mut columns = text_columns(batch, &self.options, &self.json_options)?;
        let null_text = self.layout.escape(&self.options.null_text).into_owned();
        let mut cell = String::new();
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut cells = Vec::with_capacity(columns.len());
            for column in columns.iter_mut() {
                cell.clear();
                if column.write(row, &mut cell)? {
                    cells.push(self.layout.escape(&cell).into_owned());
                } else {
                    cells.push(null_text.clone());
                }
            }
            rows.push(cells);
        }
        Ok(rows)
    }

    fn write_head(&mut self) -> Result<(), EncodeError> {
        if self.started {
            return Ok(());
        }
        let columns: Vec<Cow<str>> = self
            .schema
            .fields()
            .iter()
            .map(|field| self.layout.escape(field.name()))
            .collect();
        let mut context = self.context();
        context.insert("columns", &columns);
        context.insert("header", &self.layout.has_header(&self.options));
        context.insert("caption", &self.options.table_name);
        self.render("head", &context)?;
        self.started = true;
        Ok(())
    }
}

impl Encoder for TableEncoder {
    fn write_batch(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.write_head()?;
        let rows = self.cells(batch)?;
        let mut context = self.context();
        context.insert("rows", &rows);
        self.render("rows", &context)?;
        self.sink.flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), EncodeError> {
        self.write_head()?;
        let context = self.context();
        self.render("foot", &context)?;
        self.sink.flush()?;
        Ok(())
    }
}
