/* The audit panel (审计抽查): the cases drawn for the officer whose key this screen holds, each
 * opening its full timeline (the case drawer of app.js) and taking the officer's checklist
 * finding. Reads GET /api/v1/audits/mine, writes POST /api/v1/audits/{id}/findings. Chinese
 * first; English when the page is switched (the <html lang> app.js sets). Text only, never HTML.
 */
'use strict';

(() => {
  const KEY = 'esup.monitor.key';
  const $ = (sel) => document.querySelector(sel);
  const TEXT = {
    zh: { title: '审计抽查', sub: '抽取给我的办件（双随机）', none: '暂无抽取给您的办件', timeline: '时间线', record: '记录发现',
      amend: '修改发现', done: '已记录', todo: '待记录', conforming: '符合', deviation: '偏差', note: '说明（偏差必填）',
      overall: '总体意见（可选）', cancel: '取消', submit: '提交', findingFor: '抽查发现：{c}', states: { assigned: '审查中',
        closed: '已结束', drawn: '已抽取' }, needNote: '偏差须写明说明' },
    en: { title: 'Random audits', sub: 'cases drawn for me (double random)', none: 'No cases drawn for you',
      timeline: 'timeline', record: 'record finding', amend: 'amend finding', done: 'recorded', todo: 'to record',
      conforming: 'conforming', deviation: 'deviation', note: 'note (required for a deviation)', overall: 'overall note (optional)',
      cancel: 'Cancel', submit: 'Submit', findingFor: 'Audit finding: {c}', states: { assigned: 'in review', closed: 'closed',
        drawn: 'drawn' }, needNote: 'a deviation needs its note' },
  };
  let rows = [];
  let current = null;

  const lang = () => (document.documentElement.lang === 'en' ? 'en' : 'zh');
  const tx = (k, vars) => {
    let s = TEXT[lang()][k];
    if (vars) for (const [n, v] of Object.entries(vars)) s = s.split('{' + n + '}').join(String(v));
    return s;
  };
  const key = () => localStorage.getItem(KEY) || '';
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  async function refresh() {
    if (!key()) return;
    let r;
    try {
      r = await fetch('/api/v1/audits/mine', { headers: { Authorization: 'Bearer ' + key() }, cache: 'no-store' });
    } catch (_) { return; }
    if (r.status === 403 || r.status === 401 || r.status === 404) { $('#audit-panel').hidden = true; return; }
    if (!r.ok) return;
    rows = (await r.json()).cases || [];
    render();
  }

  function render() {
    const panel = $('#audit-panel');
    panel.hidden = false;
    $('#audit-heading').textContent = tx('title');
    $('#audit-sub').textContent = tx('sub');
    const note = $('#audit-note');
    note.textContent = tx('none');
    note.hidden = rows.length > 0;
    const body = $('#audit-cases tbody');
    body.replaceChildren();
    for (const row of rows) {
      const tr = el('tr');
      tr.dataset.case = row.case_no;
      tr.dataset.audit = row.audit_id;
      tr.dataset.recorded = row.recorded ? '1' : '0';
      const open = el('button', 'link audit-open', row.case_no);
      open.type = 'button';
      open.title = tx('timeline');
      open.addEventListener('click', () => window.esupOpenCase && window.esupOpenCase(row.case_no));
      const c1 = el('td'); c1.appendChild(open);
      tr.append(c1, el('td', null, row.title), el('td', null, row.department), el('td', null, row.item_code),
        el('td', 'audit-state', (TEXT[lang()].states[row.state] || row.state)),
        el('td', row.recorded ? 'audit-done' : 'audit-todo', row.recorded ? tx('done') : tx('todo')));
      const act = el('td');
      if (row.state === 'assigned') {
        const b = el('button', 'ghost dark audit-record', row.recorded ? tx('amend') : tx('record'));
        b.type = 'button';
        b.addEventListener('click', () => openFinding(row));
        act.appendChild(b);
      }
      tr.appendChild(act);
      body.appendChild(tr);
    }
  }

  function openFinding(row) {
    current = row;
    $('#finding-title').textContent = tx('findingFor', { c: row.case_no });
    $('#finding-note-label').textContent = tx('overall');
    $('#finding-cancel').textContent = tx('cancel');
    $('#finding-submit').textContent = tx('submit');
    $('#finding-error').hidden = true;
    $('#finding-note').value = (row.finding && row.finding.note) || '';
    const box = $('#finding-points');
    box.replaceChildren();
    for (const p of row.checklist) {
      const had = row.finding && row.finding.points[p.code];
      const line = el('div', 'finding-point');
      line.dataset.point = p.code;
      const name = el('span', 'finding-label', p.label);
      const sel = el('select');
      sel.name = p.code;
      for (const v of ['conforming', 'deviation']) {
        const o = el('option', null, tx(v));
        o.value = v;
        sel.appendChild(o);
      }
      sel.value = had ? had.result : 'conforming';
      const note = el('input');
      note.type = 'text';
      note.maxLength = 2000;
      note.placeholder = tx('note');
      note.value = (had && had.note) || '';
      note.name = p.code + '-note';
      line.append(name, sel, note);
      box.appendChild(line);
    }
    $('#finding-dialog').showModal();
  }

  async function submit(ev) {
    ev.preventDefault();
    if (!current) return;
    const points = {};
    for (const line of document.querySelectorAll('#finding-points .finding-point')) {
      const result = line.querySelector('select').value;
      const note = line.querySelector('input').value.trim();
      if (result === 'deviation' && !note) {
        const err = $('#finding-error');
        err.hidden = false;
        err.textContent = tx('needNote');
        return;
      }
      points[line.dataset.point] = note ? { result, note } : { result };
    }
    const body = { case_no: current.case_no, points };
    const overall = $('#finding-note').value.trim();
    if (overall) body.note = overall;
    const r = await fetch(`/api/v1/audits/${encodeURIComponent(current.audit_id)}/findings`, {
      method: 'POST', headers: { Authorization: 'Bearer ' + key(), 'Content-Type': 'application/json' },
      body: JSON.stringify(body) });
    if (!r.ok) {
      let detail = 'HTTP ' + r.status;
      try { const p = await r.json(); detail = `${p.code}: ${p.detail}`; } catch (_) { /* not JSON */ }
      const err = $('#finding-error');
      err.hidden = false;
      err.textContent = detail;
      return;
    }
    $('#finding-dialog').close();
    current = null;
    refresh();
  }

  function init() {
    $('#finding-form').addEventListener('submit', submit);
    $('#finding-cancel').addEventListener('click', () => $('#finding-dialog').close());
    $('#lang').addEventListener('click', () => setTimeout(() => rows.length || !$('#audit-panel').hidden ? render() : null, 0));
    $('#key-form').addEventListener('submit', () => setTimeout(refresh, 500));
    refresh();
    setInterval(refresh, 30000);
  }
  document.addEventListener('DOMContentLoaded', init);
})();
