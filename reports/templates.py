"""Jinja2 templates (autoescaped) and the stylesheet of the report, kept in Python so that the
package needs no data files. Pages link with relative paths only (``root`` is "" or "../")."""

from __future__ import annotations

import jinja2

CSS = """
:root { --pass: #2e7d32; --pass-bg: #e8f5e9; --warn: #a15c00; --warn-bg: #fff4e0;
  --fail: #b71c1c; --fail-bg: #fdecea; --na-bg: #f0f0f0; --failed-bg: #f8d7da; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1f2328; background: #fff; }
header { background: #24292f; color: #fff; padding: 8px 20px; }
header a { color: #fff; text-decoration: none; margin-right: 12px; }
header a:hover { text-decoration: underline; }
header .group { display: flex; flex-wrap: wrap; align-items: baseline; row-gap: 2px; margin: 2px 0;
                font-size: 13px; }
header .group span.label { color: #9ea7b3; margin-right: 8px; }
header .brand { font-weight: 600; }
main { padding: 12px 20px 40px; max-width: 1500px; }
h1 { font-size: 22px; margin: 10px 0 6px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead { color: #57606a; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; vertical-align: top; text-align: left; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.leaderboard td { min-width: 118px; font-size: 12px; }
table.leaderboard th.model { white-space: nowrap; }
table.study { font-size: 12px; }
table.study th { font-size: 11px; }  /* column names break after their underscores */
table.study td.long { min-width: 16em; }  /* a reason or finding reads as a paragraph */
.entry { border-radius: 4px; padding: 3px 5px; margin: 1px 0; }
.entry + .entry { margin-top: 4px; }
.badge { font-weight: 600; text-transform: uppercase; font-size: 11px; letter-spacing: .03em; }
.verdict-pass { background: var(--pass-bg); } .verdict-pass .badge { color: var(--pass); }
.verdict-inconclusive { background: var(--na-bg); } .verdict-inconclusive .badge { color: #555; }
.verdict-warn { background: var(--warn-bg); } .verdict-warn .badge { color: var(--warn); }
.verdict-fail { background: var(--fail-bg); } .verdict-fail .badge { color: var(--fail); }
.status-failed { background: var(--failed-bg);
  background-image: repeating-linear-gradient(45deg, transparent 0 6px, #f1b0b7 6px 8px); }
.status-failed .badge { color: #721c24; }
.status-na { background: var(--na-bg); color: #57606a; }
.status-missing { background: #fff; color: #8c959f; border: 1px dashed #c0c7ce; }
.status-unjudged { background: #eef2ff; }
.status-none { color: #8c959f; font-style: italic; }
.floor, .muted { color: #6e7781; } .khat { border-radius: 3px; padding: 0 3px; }
.bad { color: var(--fail); font-weight: 600; } .khat-doubtful { color: var(--warn); }
.khat-unreliable { background: var(--warn); color: #fff; font-weight: 600; } .small { font-size: 12px; }
.ref-ok { color: var(--pass); font-weight: 600; } .ref-bad { color: var(--fail); font-weight: 600; }
sup a { text-decoration: none; }
dl.env { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0;
  font-size: 13px; }
dl.env dt { color: #57606a; } dl.env dd { margin: 0; word-break: break-word; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 12px; max-width: 900px; }
.multiples { display: grid; gap: 14px 18px; margin: 8px 0 18px; align-items: start; }
.multiples.cols-3 { grid-template-columns: repeat(3, minmax(0, 1fr)); }
.multiples.cols-2 { grid-template-columns: repeat(2, minmax(0, 1fr)); }
@media (max-width: 900px) { .multiples.cols-3, .multiples.cols-2 { grid-template-columns: 1fr; } }
figure.multiple { margin: 0; min-width: 0; } figure.multiple .note { margin: 4px 0; }
.multiple-title { font-weight: 600; } .multiple-title .entry { display: inline-block; }
figure.multiple .multiple-title { display: block; margin-bottom: 4px; font-size: 14px; }
ul.no-draws li { margin: 3px 0; }
.note { background: #f6f8fa; border-left: 3px solid #8c959f; padding: 6px 10px; margin: 8px 0;
  max-width: 900px; }
.plot-failed { background: #fdecea; border-left: 3px solid var(--fail); padding: 6px 10px;
  margin: 8px 0; max-width: 900px; }
.legend span.entry { display: inline-block; margin-right: 6px; }
ol.notes li, ul.reasons li { margin: 3px 0; max-width: 1100px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
code { font-size: 12px; }
footer { color: #6e7781; font-size: 12px; padding: 10px 20px; border-top: 1px solid var(--line); }
"""

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · SVI vs NUTS benchmark</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{ root }}style.css">
</head>
<body>
<header>
  <div class="group"><a class="brand" href="{{ root }}index.html">SVI vs NUTS benchmark</a>
    <a href="{{ root }}index.html">Leaderboard</a>
    {% if nav.history %}<a href="{{ root }}{{ nav.history }}">Runtime history</a>{% endif %}
    <a href="{{ root }}results.csv">results.csv</a></div>
  <div class="group"><span class="label">Models</span>
    {% for m in nav.models %}<a href="{{ root }}{{ m.href }}">{{ m.name }}</a>{% endfor %}</div>
  <div class="group"><span class="label">Methods</span>
    {% for m in nav.methods %}<a href="{{ root }}{{ m.href }}">{{ m.name }}</a>{% endfor %}</div>
  {% if nav.get("studies") %}<div class="group"><span class="label">Studies</span>
    {% for m in nav.studies %}<a href="{{ root }}{{ m.href }}">{{ m.name }}</a>{% endfor %}</div>
  {% endif %}
</header>
<main>
{% block content %}{% endblock %}
</main>
<footer>Profile {{ nav.profile }} · settings hash {{ nav.digest }} · built {{ nav.built }}
  by <code>svi-bench report</code> from existing results (no inference is run).</footer>
</body>
</html>
"""

MACROS = """
{% macro figure(fig) -%}
{% if fig.src %}
<figure><img src="{{ fig.src }}" alt="{{ fig.alt }}">
{% if fig.caption %}<figcaption>{{ fig.caption }}</figcaption>{% endif %}
{% for n in fig.notes %}<div class="note small">{{ n }}</div>{% endfor %}
</figure>
{% elif fig.error %}<div class="plot-failed">{{ fig.alt }}: plot failed: {{ fig.error }}</div>
{% elif fig.note %}<div class="note">{{ fig.note }}</div>
{% endif %}
{%- endmacro %}

{% macro sm_title(e) -%}
<span class="multiple-title"><a href="{{ e.method_href_model }}">{{ e.s.method }}</a>
<span class="entry {{ e.s.css }}" title="{{ e.title }}"><span class="badge">{{ e.s.label }}</span>
</span>{% if e.s.n_ok and e.metric != "–" %} <span class="small muted">{{ e.metric_name }}
{{ e.metric }}</span>{% endif %}</span>
{%- endmacro %}

{% macro cell(e, root, show_name=False) -%}
<div class="entry {{ e.s.css }}" title="{{ e.title }}">
  {% if show_name %}<a href="{{ root }}{{ e.method_href }}">{{ e.short }}</a> {% endif %}
  <span class="badge">{{ e.s.label }}</span>
  {% if e.s.n_seeds > 1 %}<span class="muted">{{ e.s.n_ok }}/{{ e.s.n_seeds }} ok</span>{% endif %}
  {% if e.s.warnings %}<span class="bad">⚠</span>{% endif %}
  {% if e.note_id %}
  <sup><a href="#note-{{ e.note_id }}">[{{ e.note_id }}]</a></sup>
  {% endif %}
  {% if e.s.n_ok %}
  <div>{{ e.metric_name }} {{ e.metric }}
    {% if e.floor != "–" %}<span class="floor">(floor {{ e.floor }})</span>{% endif %}</div>
  {% if e.baseline %}<div class="muted">{{ e.wall }} s wall · {{ e.grads }} grads</div>
  {% else %}
  <div>{{ e.speed_wall }} wall · {{ e.speed_run }} run · {{ e.speed_grad }} grads</div>
  {% endif %}
  {% if e.mcmc %}
  <div class="{{ 'bad' if e.mcmc_suspect else 'muted' }}">R-hat {{ e.rhat }} · ESS {{ e.ess }}
    {% if e.s.value("divergences") > 0 %}· {{ e.s.value("divergences")|int }} div.{% endif %}
  </div>
  {% endif %}
  {% if e.khat != "–" %}<div><span class="khat khat-{{ e.khat_level }}"
    title="{{ e.khat_title }}">k-hat {{ e.khat }}</span></div>{% endif %}
  {% endif %}
</div>
{%- endmacro %}
"""

INDEX = """{% extends "base.html" %}{% import "macros.html" as mac %}
{% block content %}
<h1>SVI guides against NUTS</h1>
<p class="lead">One row per model, one column per method. Each cell: the worst verdict over the ok
seeds (pass / inconclusive / warn / fail: agreement with a trusted reference posterior, the worse
of the marginal and the joint verdict; inconclusive where the draws are too few for the metrics
to fail whatever they are), the headline agreement
metric (median over seeds) with its Monte Carlo noise floor, the speed-up over NUTS on the same
model (wall time = compile + run, run time alone, gradient evaluations), and the median PSIS
k-hat where defined: a reference-free diagnostic beside the verdict, never part of it. Hover a
cell for its reasons; failures and non-applicable runs are listed below.</p>
{% if verdict_note %}<div class="note small">{{ verdict_note }}</div>{% endif %}
{% if timing_note %}<div class="note small" id="timing-note">{{ timing_note }}</div>{% endif %}
<div class="legend small">
  <span class="entry verdict-pass"><span class="badge">pass</span></span>
  <span class="entry verdict-inconclusive"><span class="badge">inconclusive</span>
    noise floors too large to tell</span>
  <span class="entry verdict-warn"><span class="badge">warn</span></span>
  <span class="entry verdict-fail"><span class="badge">fail</span></span>
  <span class="entry status-failed"><span class="badge">failed</span>
    run crashed or produced non-finite output</span>
  <span class="entry status-na"><span class="badge">n/a</span> method cannot apply</span>
  <span class="entry status-missing"><span class="badge">not run</span> no row in the results</span>
  <span class="khat khat-unreliable">k-hat</span> above {{ khat_limit }} (a diagnostic, not the verdict);
  <span class="bad">⚠</span> the run has warnings (hover);
  NUTS cells show R-hat, bulk ESS and divergences, in red when R-hat &gt; 1.01 or any divergence
</div>
<div class="scroll">
<table class="leaderboard">
<thead><tr><th>model</th><th>reference</th>
{% for col in columns %}
<th>{% if col.href %}<a href="{{ col.href }}">{{ col.name }}</a>
{% else %}{{ col.name }}{% endif %}</th>
{% endfor %}
</tr></thead>
<tbody>
{% for row in rows %}
<tr data-model="{{ row.model }}">
  <th class="model"><a href="{{ row.href }}">{{ row.model }}</a>
  {% if not row.registered %}<br><span class="muted small">not in the registry</span>{% endif %}
  </th>
  <td class="small">
  {% if row.ref %}
  <span title="{{ row.ref.title }}" class="{{ 'ref-ok' if row.ref.ok else 'ref-bad' }}">
    {{ row.ref.kind }}{% if row.ref.quality %} ({{ row.ref.quality }}){% endif %}
    {{ '✓' if row.ref.ok else '✗ failed' }}</span>
  {% else %}<span class="muted">none</span>{% endif %}
  </td>
  {% for entries in row.cells %}
  <td>{% if not entries %}<span class="status-none small">{{ columns[loop.index0].empty }}</span>
  {%- endif %}
  {% for e in entries %}{{ mac.cell(e, "", show_name=e.grouped) }}{% endfor %}</td>
  {% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
</div>

{% if notes %}
<h2>Failures, non-applicable and unjudged runs</h2>
<ol class="notes">
{% for n in notes %}
<li id="note-{{ n.id }}"><a href="{{ n.model_href }}">{{ n.model }}</a> ×
  <a href="{{ n.method_href }}">{{ n.method }}</a> — <strong>{{ n.label }}</strong>:
  {{ n.text }}</li>
{% endfor %}
</ol>
{% endif %}

<h2>Methods across models</h2>
<table>
<thead><tr><th>method</th>
{% for h, _ in count_columns %}<th class="num">{{ h }}</th>{% endfor %}
{% for h in ["median wall speed-up", "median grad speed-up"] %}<th class="num">{{ h }}</th>{% endfor %}
</tr></thead>
<tbody>
{% for m in method_rows %}
<tr><th><a href="{{ m.href }}">{{ m.name }}</a></th>
{% for _, k in count_columns %}
<td class="num">{{ m.counts[k] }}</td>
{% endfor %}
<td class="num">{{ m.speed_wall }}</td><td class="num">{{ m.speed_grad }}</td></tr>
{% endfor %}
</tbody>
</table>

<h2>Environment</h2>
<dl class="env">
{% for k, v in environment %}<dt>{{ k }}</dt><dd>{{ v }}</dd>
{% endfor %}
</dl>
{% if history_note %}<div class="note small">Runtime history: {{ history_note }}</div>{% endif %}
{% for n in reference_notes %}<div class="note small">{{ n }}</div>{% endfor %}
{% for n in budget_notes %}<div class="note small budget-note">{{ n }}</div>{% endfor %}
{% endblock %}
"""

MODEL = """{% extends "base.html" %}{% import "macros.html" as mac %}
{% block content %}
<h1>{{ model }}</h1>
{% if about %}<p class="lead">{{ about.description }}</p>
{% if not spec %}<div class="note small">The model's code could not be restored: its description
comes from the results folder's manifest, and its data cannot be drawn.</div>{% endif %}
{% else %}<p class="lead">This model is not in the registry of the current code: only its stored
results are shown.</p>{% endif %}
<dl class="env">
{% if about %}<dt>source</dt><dd>{{ about.source }}</dd>
<dt>reference kind</dt><dd>{{ about.reference_kind }}</dd>
{% if about.notes %}<dt>notes</dt><dd>{{ about.notes }}</dd>{% endif %}{% endif %}
<dt>data</dt><dd><code>{{ data_key }}</code></dd>
{% if latent_dim %}<dt>latent dimension</dt><dd>{{ latent_dim }}</dd>{% endif %}
<dt>draws shown</dt><dd>{{ seeds_shown }}</dd>
</dl>
{% for n in budget_notes %}<div class="note budget-note">{{ n }}</div>{% endfor %}
{% if not has_rows %}<div class="note">No run of this model is in the results table.</div>
{% endif %}

<h2>Data</h2>
{{ mac.figure(figs.data) }}

<h2>Posterior</h2>
{{ mac.figure(figs.corner) }}
{% if figs.multiples %}{% set mp = figs.multiples %}
<h3 id="each-method">Each method against the reference</h3>
<p class="small muted">One corner per method in leaderboard order: the method's draws (line) over
the reference's (shaded), the same thinned draws and axis ranges as the combined plot above.</p>
{% if mp.note %}<div class="note">{{ mp.note }}</div>{% endif %}
<div class="multiples {{ mp.grid }}">{% for it in mp["items"] if it.fig %}
<figure class="multiple" data-method="{{ it.e.s.method }}">{{ mac.sm_title(it.e) }}
{% if it.fig.src %}<img src="{{ it.fig.src }}" alt="{{ it.fig.alt }}">{% endif %}
{% for n in it.fig.notes %}<div class="note small">{{ n }}</div>{% endfor %}
{% if it.fig.error %}<div class="plot-failed small">plot failed: {{ it.fig.error }}</div>
{% elif it.fig.note %}<div class="note small">{{ it.fig.note }}</div>{% endif %}</figure>
{% endfor %}</div>
<ul class="no-draws">{% for it in mp["items"] if not it.fig %}
<li data-method="{{ it.e.s.method }}">{{ mac.sm_title(it.e) }} — {{ it.note }}</li>
{% endfor %}</ul>
{% endif %}
{% if figs.intervals %}{{ mac.figure(figs.intervals) }}{% endif %}
{% if figs.predictive %}{{ mac.figure(figs.predictive) }}{% endif %}

<h2>SVI loss curves</h2>
{{ mac.figure(figs.loss) }}

<h2>{{ sampler }} diagnostics</h2>
{{ mac.figure(figs.trace) }}
{{ mac.figure(figs.energy) }}

<h2>Metrics</h2>
<p class="small muted">Median over ok seeds (range over seeds on hover); agreement metrics show
their noise floor in parentheses, the value an exact sampler with the same number of draws would
reach.</p>
<div class="scroll">
<table>
<thead><tr><th>metric</th><th>unit</th>
{% for m in methods %}<th><a href="{{ m.href }}">{{ m.name }}</a></th>{% endfor %}
</tr></thead>
<tbody>
<tr><th>verdict</th><td></td>
{% for e in method_entries %}
<td class="{{ e.s.css }}" title="{{ e.title }}"><span class="badge">{{ e.s.label }}</span><br>
  <span class="small muted">{{ e.s.counts_text }}</span></td>
{% endfor %}
</tr>
{% for r in metric_rows %}
<tr><th title="{{ r.description }}">{{ r.label }}</th><td class="small muted">{{ r.unit }}</td>
{% for c in r.cells %}
<td class="num" title="{{ c.title }}">{{ c.value }}
  {% if c.floor %}<span class="floor small">({{ c.floor }})</span>{% endif %}</td>
{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
</div>

<h2>Verdicts, failures and warnings</h2>
<ul class="reasons">
{% for e in method_entries %}
<li><a href="{{ e.method_href_model }}">{{ e.s.method }}</a> — <strong>{{ e.s.label }}</strong>
  ({{ e.s.counts_text }}){% if e.s.reason %}: {{ e.s.reason }}{% endif %}
  {% if e.s.warnings %}<br><span class="muted">warnings: {{ e.s.warnings|join("; ") }}</span>
  {% endif %}</li>
{% endfor %}
</ul>

<h2>Reference posterior</h2>
{% if ref %}
<dl class="env">
<dt>kind</dt><dd>{{ ref.kind }}</dd>
<dt>quality</dt><dd>{{ ref.quality }}</dd>
<dt>ok</dt><dd class="{{ 'ref-ok' if ref.ok else 'ref-bad' }}">
  {{ 'yes' if ref.ok else 'no: verdicts that lean on it say so' }}</dd>
{% if ref.failed_checks %}<dt>failed checks</dt>
<dd><ul>{% for c in ref.failed_checks %}<li>{{ c }}</li>{% endfor %}</ul></dd>{% endif %}
{% for k, v in ref.fields %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}
</dl>
{% if ref.checks %}<h3>Checks</h3>
<table><tbody>
{% for k, v in ref.checks %}<tr><th>{{ k }}</th><td class="num">{{ v }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
{% else %}<div class="note">{{ ref_missing }}</div>{% endif %}
{% endblock %}
"""

METHOD = """{% extends "base.html" %}
{% block content %}
<h1>{{ method }}</h1>
<p class="lead">{{ description }}</p>
{% if budgets %}<p class="small">Budget per profile (defaults; a document's own settings for a
model override them, and every row records the settings it ran):</p>
<ul class="small">{% for profile, text in budgets %}<li><strong>{{ profile }}</strong>: {{ text }}</li>
{% endfor %}</ul>{% endif %}
<p>Verdicts over models:
{% for k, v in counts %}<strong>{{ v }}</strong> {{ k }}{% if not loop.last %}, {% endif %}
{% endfor %}.
A guide is trustworthy on a model where it passes against a reference that itself passed its
checks.</p>
<div class="scroll">
<table>
<thead><tr><th>model</th><th>verdict</th><th>seeds</th><th>headline metric (floor)</th>
{% for h in ["psis k-hat", "speed-up wall", "speed-up run", "speed-up grads"] %}
<th class="num">{{ h }}</th>{% endfor %}
<th>memory</th><th>reference</th><th>reason</th></tr></thead>
<tbody>
{% for r in rows %}
<tr data-model="{{ r.model }}"><th><a href="{{ r.href }}">{{ r.model }}</a></th>
<td class="{{ r.s.css }}"><span class="badge">{{ r.s.label }}</span></td>
<td class="small">{{ r.s.counts_text }}</td>
<td class="num">{{ r.metric_name }} {{ r.metric }}
  {% if r.floor != "–" %}<span class="floor">({{ r.floor }})</span>{% endif %}</td>
<td class="num">{{ r.khat }}</td><td class="num">{{ r.speed_wall }}</td>
<td class="num">{{ r.speed_run }}</td><td class="num">{{ r.speed_grad }}</td>
<td class="small">{{ r.memory or "–" }}</td>
<td class="small">{% if r.ref_ok is none %}<span class="muted">–</span>
  {% elif r.ref_ok %}<span class="ref-ok">ok</span>
  {% else %}<span class="ref-bad">failed</span>{% endif %}</td>
<td class="small">{{ r.s.reason }}
  {% if r.s.warnings %}<br><span class="muted">warnings: {{ r.s.warnings|join("; ") }}</span>
  {% endif %}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% endblock %}
"""


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"base.html": BASE, "macros.html": MACROS, "index.html": INDEX,
                                  "model.html": MODEL, "method.html": METHOD}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env
