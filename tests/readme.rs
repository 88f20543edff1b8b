//! The README's Rust code must compile when pasted into a new project: it is
//! shown verbatim on GitHub and crates.io, where rustdoc's hidden lines
//! (`# ...`) show up as text. Each Rust block is a complete program (the
//! doc tests compile it, through `ReadmeDoctests` in `src/lib.rs`), and has no
//! hidden lines. No server.

/// The Rust blocks of a Markdown text: (line of the opening fence, code).
fn rust_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match &mut open {
            None if fence => {
                let info = line.trim_start().trim_start_matches('`');
                let lang = info.split(',').next().unwrap_or("").trim();
                open = Some((n + 1, String::new()));
                if lang != "rust" {
                    // Not Rust: skip to the closing fence, keeping nothing.
                    open.as_mut().unwrap().0 = 0;
                }
            }
            None => {}
            Some(_) if fence => {
                let (at, code) = open.take().unwrap();
                if at != 0 {
                    blocks.push((at, code));
                }
            }
            Some((_, code)) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

/// Lines rustdoc would hide: `#` alone or `# ` then anything (`#[attr]`
/// and `#!` are code).
fn hidden_lines(code: &str) -> Vec<&str> {
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            t == "#" || t.starts_with("# ")
        })
        .collect()
}

#[test]
fn readme_rust_blocks_are_complete_programs_without_hidden_lines() {
    let readme = include_str!("../README.md");
    let blocks = rust_blocks(readme);
    assert!(
        blocks.len() >= 2,
        "expected the README's programs, found {}",
        blocks.len()
    );
    for (line, code) in &blocks {
        assert!(
            hidden_lines(code).is_empty(),
            "README.md:{line}: hidden rustdoc lines show verbatim on GitHub: {:?}",
            hidden_lines(code)
        );
        assert!(
            code.contains("fn main() {")
                || code.contains("fn main() -> Result<(), Box<dyn std::error::Error>> {"),
            "README.md:{line}: not a complete program (no `fn main`)"
        );
    }
}

/// The Quickstart programs are also examples, so that `cargo run --example`
/// runs exactly what the README shows.
#[test]
fn the_quickstart_programs_are_the_examples_verbatim() {
    let readme = include_str!("../README.md");
    let blocks = rust_blocks(readme);
    let examples = [
        (
            "examples/quickstart_lock.rs",
            include_str!("../examples/quickstart_lock.rs"),
        ),
        (
            "examples/quickstart_elector.rs",
            include_str!("../examples/quickstart_elector.rs"),
        ),
    ];
    for (i, (path, example)) in examples.iter().enumerate() {
        let (line, code) = &blocks[i];
        assert!(
            example.contains(code.as_str()),
            "README.md:{line} is not {path} verbatim: copy the block into the example"
        );
    }
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let md = "text\n```rust,no_run\nlet x = 1;\n# Ok::<(), ()>(())\n```\n```sh\n# a comment\n```\n";
    let blocks = rust_blocks(md);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].0, 2);
    assert_eq!(hidden_lines(&blocks[0].1), vec!["# Ok::<(), ()>(())"]);
    assert!(hidden_lines("#[derive(Debug)]\n#![allow(x)]\n").is_empty());
}
