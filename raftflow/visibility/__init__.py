"""Visibility queries (issue 13): Temporal's list-filter language, parsed and evaluated.

Pure modules, no IO: `query_parser.parse` turns text into a typed `query_ast.Query`,
`query_eval.matches` runs it over in-memory rows (open workflows), `query_sql.to_sql` turns it
into a fully parameterised SQLite filter (closed workflows), and `query_text.render` writes it
back as text. Both back ends must select the same runs in the same order; a property test holds
them to it.
"""
