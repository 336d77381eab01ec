"""HTML tables for the report (lsmia.paper.html)."""
from lsmia.paper.html import table_html


def test_table_html_escapes_text_and_aligns_numbers():
    page = table_html(["name", "x <y>"], [["a & b", "1.5"], ["<script>", "2"]], [False, True],
                      caption="T & C", before=["first"], notes=["n < 1"])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<th class="num">x &lt;y&gt;</th>' in page and '<td class="num">1.5</td>' in page
    assert "<td>a &amp; b</td>" in page and "<caption>T &amp; C</caption>" in page
    assert page.index("<p>first</p>") < page.index("<table>") < page.index("<li>n &lt; 1</li>")
    assert page.count("<tr>") == 3
