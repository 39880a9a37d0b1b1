/* esup dashboard: complaints (投诉) and supervision notices (督察意见 → 整改).
 *
 * A separate, self-contained script beside app.js: it reads the key app.js keeps in localStorage
 * and follows the page's language (<html lang>, set by app.js's 中文 / EN switch). Reads:
 *   GET /api/v1/oversight/summary   counts (officer, province, admin keys)
 *   GET /api/v1/complaints          the latest complaints, late ones marked
 *   GET /api/v1/notices             the latest notices with their problems' progress
 * Department keys see their own complaints and notices (no summary). Everything is inserted as
 * text; complainants' personal data is never shown.
 */
'use strict';

(() => {
  const KEY = 'esup.monitor.key';
  const REFRESH_MS = 30000;
  const T = {
    zh: {
      'c.title': '投诉处理', 'c.sub': '受理 · 交办 · 调查 · 办结', 'c.empty': '暂无投诉',
      'c.received': '收到投诉', 'c.open': '办理中', 'c.substantiated': '属实', 'c.late': '超期', 'c.warned': '已预警',
      'n.title': '督察整改', 'n.sub': '督察意见 · 整改 · 互查互评', 'n.empty': '暂无督察意见',
      'n.notices': '督察意见', 'n.problems': '问题', 'n.rectified': '已整改销号', 'n.rounds': '互查互评（轮）',
      'n.late': '整改超期', 'n.progress': '整改 {a}/{b}', 'late': '超期', due: '期限 {t}', round: '互查互评 {r}',
      status: { received: '待受理', accepted: '待交办', not_accepted: '不予受理', assigned: '调查中', investigated: '待办结',
        concluded: '已办结', open: '整改中', closed: '已销号' },
      channel: { phone: '电话', letter: '信函', online: '网上', in_person: '现场' },
      yes: '属实', no: '不属实',
    },
    en: {
      'c.title': 'Complaints', 'c.sub': 'accept · assign · investigate · conclude', 'c.empty': 'No complaints',
      'c.received': 'received', 'c.open': 'in hand', 'c.substantiated': 'substantiated', 'c.late': 'late',
      'c.warned': 'warned',
      'n.title': 'Supervision notices', 'n.sub': 'notices · rectification · mutual inspection', 'n.empty': 'No notices',
      'n.notices': 'notices', 'n.problems': 'problems', 'n.rectified': 'rectified', 'n.rounds': 'inspection rounds',
      'n.late': 'overdue', 'n.progress': 'rectified {a}/{b}', 'late': 'late', due: 'due {t}', round: 'inspection round {r}',
      status: { received: 'to accept', accepted: 'to assign', not_accepted: 'not accepted', assigned: 'investigating',
        investigated: 'to conclude', concluded: 'concluded', open: 'rectifying', closed: 'closed' },
      channel: { phone: 'phone', letter: 'letter', online: 'online', in_person: 'in person' },
      yes: 'substantiated', no: 'unfounded',
    },
  };
  const $ = (sel) => document.querySelector(sel);
  const lang = () => (document.documentElement.lang || 'zh').startsWith('en') ? 'en' : 'zh';
  function t(key, vars) {
    let s = T[lang()][key] ?? T.zh[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
    return s;
  }
  const word = (table, code) => T[lang()][table][code] || code;
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function day(iso) {
    if (!iso) return '—';
    const p = {};
    for (const x of new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit',
      day: '2-digit' }).formatToParts(new Date(iso))) p[x.type] = x.value;
    return `${p.year}-${p.month}-${p.day}`;
  }
  let data = { summary: null, complaints: null, notices: null };

  async function get(path) {
    const key = localStorage.getItem(KEY);
    if (!key) return null;
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' }, cache: 'no-store' });
    return r.ok ? r.json() : null;
  }

  async function refresh() {
    const [summary, complaints, notices] = await Promise.all([
      get('/api/v1/oversight/summary'), get('/api/v1/complaints?limit=8'), get('/api/v1/notices?limit=6')]);
    data = { summary, complaints, notices };
    render();
  }

  function chip(label, value, cls) {
    const c = el('span', 'ov-chip' + (cls ? ' ' + cls : ''));
    c.append(el('b', null, value), el('span', null, label));
    return c;
  }

  function render() {
    const s = data.summary;
    $('#cp-title').textContent = t('c.title');
    $('#cp-sub').textContent = t('c.sub');
    $('#np-title').textContent = t('n.title');
    $('#np-sub').textContent = t('n.sub');
    const cc = [];
    if (s) {
      const c = s.complaints;
      const open = Object.entries(c.by_status).filter(([k]) => !['concluded', 'not_accepted'].includes(k))
        .reduce((a, [, v]) => a + v, 0);
      cc.push(chip(t('c.received'), c.received), chip(t('c.open'), open), chip(t('c.substantiated'), c.substantiated),
        chip(t('c.late'), c.late_now, c.late_now ? 'late' : ''), chip(t('c.warned'), c.warned));
    }
    $('#cp-counts').replaceChildren(...cc);
    const list = (data.complaints && data.complaints.complaints) || [];
    $('#cp-list').replaceChildren(...list.map((c) => {
      const li = el('li', c.late ? 'late' : '');
      li.dataset.no = c.complaint_no;
      const head = el('div', 'oh');
      head.append(el('span', 'no', c.complaint_no), el('span', 'st st-' + c.status, word('status', c.status)),
        el('span', 'ch', word('channel', c.channel)));
      if (c.substantiated !== null) head.append(el('span', c.substantiated ? 'st yes' : 'st', c.substantiated ? t('yes') : t('no')));
      if (c.late) head.append(el('span', 'badge red', t('late')));
      const who = el('div', 'who', [c.department, c.staff, c.case_no].filter(Boolean).join(' · ')
        + (c.due_date ? ' · ' + t('due', { t: c.due_date }) : ''));
      li.append(head, who);
      return li;
    }));
    $('#cp-empty').hidden = list.length > 0;
    $('#cp-empty').textContent = t('c.empty');
    const nc = [];
    if (s) {
      const n = s.notices;
      nc.push(chip(t('n.notices'), n.notices), chip(t('n.problems'), n.problems), chip(t('n.rectified'), n.rectified),
        chip(t('n.rounds'), n.inspection_rounds), chip(t('n.late'), n.late_now, n.late_now ? 'late' : ''));
    }
    $('#np-counts').replaceChildren(...nc);
    const notices = (data.notices && data.notices.notices) || [];
    $('#np-list').replaceChildren(...notices.map((n) => {
      const li = el('li', n.late_problems ? 'late' : '');
      li.dataset.no = n.notice_no;
      const head = el('div', 'oh');
      head.append(el('span', 'no', n.notice_no), el('span', 'st st-' + n.status, word('status', n.status)),
        el('span', 'prog', t('n.progress', { a: n.closed_problems, b: n.problems })));
      if (n.late_problems) head.append(el('span', 'badge red', t('late') + ' ' + n.late_problems));
      const sub = el('div', 'who', [n.title, n.department, n.round ? t('round', { r: n.round }) : null, day(n.issued_at)]
        .filter(Boolean).join(' · '));
      li.append(head, sub);
      return li;
    }));
    $('#np-empty').hidden = notices.length > 0;
    $('#np-empty').textContent = t('n.empty');
  }

  function start() {
    if (!$('#oversight')) return;
    new MutationObserver(render).observe(document.documentElement, { attributes: true, attributeFilter: ['lang'] });
    refresh().catch(() => {});
    setInterval(() => refresh().catch(() => {}), REFRESH_MS);
    // The key is entered in app.js's dialog: look again soon after it closes.
    const dlg = $('#key-dialog');
    if (dlg) dlg.addEventListener('close', () => setTimeout(() => refresh().catch(() => {}), 300));
  }
  document.addEventListener('DOMContentLoaded', start);
})();
