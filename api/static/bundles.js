/* esup dashboard: parallel-approval bundles (并联审批) and the three tiers (三级政务).
 *
 * Its own panels, beside app.js: reads
 *   GET /api/v1/bundles?limit=20     the latest bundles with their parts (late ones marked)
 *   GET /api/v1/metrics/channels     figures by channel
 *   GET /api/v1/metrics/centers      figures and rankings by tier and center (the center switcher)
 * with the key app.js keeps in localStorage. Everything is inserted as text, never as HTML.
 */
'use strict';

(() => {
  const KEY = 'esup.monitor.key';
  const REFRESH_MS = 30000;
  const T = {
    zh: {
      'bundles.title': '并联审批', 'bundles.sub': '最新并联审批件 · 点击查看子件', 'bundles.empty': '暂无并联审批件',
      'bundles.no': '审批件编号', 'bundles.channel': '通道', 'bundles.status': '状态', 'bundles.parts': '子件',
      'bundles.due': '通道承诺期限', 'late': '超时', 'ontime': '按时', 'open': '办理中',
      'status.submitted': '已收件', 'status.accepted': '已受理', 'status.concluded': '已办结',
      'part.not_reported': '未报送', 'part.hidden': '（其他部门）', 'part.overdue': '子件超时',
      'level.yellow': '黄牌', 'level.red': '红牌', 'level.severe': '超法定时限',
      'ch.volume': '办件 {n}', 'ch.hours': '平均 {n} 小时', 'ch.days': '平均 {n} 个工作日', 'ch.saved': '节省 {n} 个工作日',
      'tiers.title': '三级政务', 'tiers.sub': '区级 · 街道 · 社区', 'tiers.center': '服务中心',
      'tier.district': '区级政务服务中心', 'tier.street': '街道社会事务服务中心', 'tier.community': '社区便民服务中心',
      'tiers.all': '全部中心（按层级汇总）', 'tiers.rank': '层级内排名 {r}/{n}', 'tiers.volume': '办件量', 'tiers.rate': '按时办结率',
      'tiers.sat': '满意率', 'tiers.items': '下放事项', 'tiers.windows': '窗口', 'tiers.centers': '中心数',
    },
    en: {
      'bundles.title': 'Parallel approval', 'bundles.sub': 'latest bundles · click for the parts', 'bundles.empty': 'No bundles',
      'bundles.no': 'Bundle', 'bundles.channel': 'Channel', 'bundles.status': 'Status', 'bundles.parts': 'Parts',
      'bundles.due': 'Channel promise', 'late': 'late', 'ontime': 'on time', 'open': 'open',
      'status.submitted': 'received', 'status.accepted': 'accepted', 'status.concluded': 'concluded',
      'part.not_reported': 'not reported', 'part.hidden': '(another department)', 'part.overdue': 'part late',
      'level.yellow': 'Yellow', 'level.red': 'Red', 'level.severe': 'Past legal limit',
      'ch.volume': '{n} bundles', 'ch.hours': 'avg {n} h', 'ch.days': 'avg {n} working days', 'ch.saved': '{n} working days saved',
      'tiers.title': 'Three tiers', 'tiers.sub': 'district · street · community', 'tiers.center': 'Center',
      'tier.district': 'District center', 'tier.street': 'Street centers', 'tier.community': 'Community centers',
      'tiers.all': 'All centers (by tier)', 'tiers.rank': 'rank {r} of {n} in its tier', 'tiers.volume': 'Volume',
      'tiers.rate': 'On time', 'tiers.sat': 'Satisfied', 'tiers.items': 'Delegated items', 'tiers.windows': 'Windows',
      'tiers.centers': 'Centers',
    },
  };
  const STEP = {
    zh: { submitted: '已收件', supplement_requested: '补正中', supplemented: '已补正', accepted: '已受理', undertaken: '承办中',
      reviewed: '审核中', decided: '已决定', concluded: '已办结', refused: '不予受理', withdrawn: '已撤件' },
    en: {},
  };
  const state = { bundles: [], channels: [], centers: null, open: new Set(), center: '' };
  const $ = (s) => document.querySelector(s);
  const lang = () => (document.documentElement.lang === 'en' ? 'en' : 'zh');
  const t = (k, vars) => {
    let s = T[lang()][k] || T.zh[k] || k;
    if (vars) for (const [a, b] of Object.entries(vars)) s = s.split('{' + a + '}').join(String(b));
    return s;
  };
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const pct = (r) => (r === null || r === undefined ? '—' : r.toFixed(r >= 99.95 || r === 0 ? 0 : 1) + '%');
  const when = (iso) => {
    if (!iso) return '—';
    const p = {};
    for (const x of new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso))) p[x.type] = x.value;
    return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
  };

  async function api(path) {
    const key = localStorage.getItem(KEY);
    if (!key) throw new Error('no key');
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + key, Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.json();
  }

  // -- bundles ------------------------------------------------------------------------------

  function renderBundles() {
    const body = $('#bundles tbody');
    if (!body) return;
    const rows = [];
    for (const b of state.bundles) {
      const tr = el('tr', 'bundle' + (b.late ? ' late' : ''));
      tr.dataset.bundle = b.bundle_no;
      tr.dataset.late = b.late ? '1' : '0';
      if (b.level) tr.dataset.level = b.level;
      tr.append(el('td', 'no', b.bundle_no), el('td', null, b.channel_name || b.channel),
        el('td', null, t('status.' + b.status) + (b.level ? ' · ' + t('level.' + b.level) : '')),
        el('td', 'num', `${b.parts_closed}/${b.parts_total}`), el('td', null, when(b.promised_due_at)),
        el('td', 'verdict', b.late ? t('late') : b.status === 'concluded' ? t('ontime') : t('open')));
      tr.addEventListener('click', () => {
        if (state.open.has(b.bundle_no)) state.open.delete(b.bundle_no); else state.open.add(b.bundle_no);
        renderBundles();
      });
      rows.push(tr);
      if (state.open.has(b.bundle_no)) {
        const sub = el('tr', 'parts-row');
        const td = el('td');
        td.colSpan = 6;
        const ul = el('ul', 'parts');
        ul.dataset.bundle = b.bundle_no;
        for (const p of b.parts) {
          const li = el('li', p.on_time === false ? 'late' : '');
          li.dataset.case = p.case_no;
          li.dataset.status = p.status;
          const status = STEP[lang()][p.status] || (p.status === 'not_reported' ? t('part.not_reported') : p.status);
          const late = (b.late_parts_now || []).includes(p.case_no) ? ' · ' + t('part.overdue') : '';
          li.textContent = `${p.case_no} · ${p.department || ''} ${p.item_code || ''} · ${status}${late}`;
          ul.appendChild(li);
        }
        td.appendChild(ul);
        sub.appendChild(td);
        rows.push(sub);
      }
    }
    body.replaceChildren(...rows);
    $('#bundles-note').hidden = state.bundles.length > 0;
    const chips = state.channels.map((c) => {
      const bits = [c.name, t('ch.volume', { n: c.volume }), pct(c.on_time_rate)];
      if (c.promised_limit && c.promised_limit.unit === 'working_hours' && c.average_hours !== null) bits.push(t('ch.hours', { n: c.average_hours }));
      else if (c.average_working_days !== null) bits.push(t('ch.days', { n: c.average_working_days }));
      if (c.working_days_saved) bits.push(t('ch.saved', { n: Math.round(c.working_days_saved).toLocaleString() }));
      const s = el('span', 'chip', bits.join(' · '));
      s.dataset.channel = c.channel;
      return s;
    });
    $('#channel-figures').replaceChildren(...chips);
  }

  async function refreshBundles() {
    try {
      const [b, c] = await Promise.all([api('/api/v1/bundles?limit=20'), api('/api/v1/metrics/channels')]);
      state.bundles = b.bundles || [];
      state.channels = c.channels || [];
      renderBundles();
    } catch (_) { /* no key yet, or no bundles module: try again later */ }
  }

  // -- tiers and the center switcher ----------------------------------------------------------

  function renderTiers() {
    const sel = $('#center-switch');
    if (!sel || !state.centers) return;
    const centers = state.centers.centers || [];
    const keep = state.center;
    const options = [el('option', null, t('tiers.all'))];
    options[0].value = '';
    for (const tier of ['district', 'street', 'community']) {
      const group = document.createElement('optgroup');
      group.label = t('tier.' + tier);
      for (const c of centers.filter((x) => x.tier === tier)) {
        const o = el('option', null, c.name);
        o.value = c.key;
        group.appendChild(o);
      }
      if (group.children.length) options.push(group);
    }
    sel.replaceChildren(...options);
    sel.value = keep;
    const out = $('#tier-figures');
    const rows = [];
    if (!state.center) {
      for (const tr of state.centers.tiers || []) {
        const row = el('tr');
        row.dataset.tier = tr.tier;
        row.append(el('td', null, t('tier.' + tr.tier)), el('td', 'num', tr.centers), el('td', 'num', tr.volume),
          el('td', 'num', pct(tr.on_time_rate)), el('td', 'num', pct(tr.satisfaction_rate)));
        rows.push(row);
      }
      $('#tier-head').replaceChildren(...[t('tiers.center'), t('tiers.centers'), t('tiers.volume'), t('tiers.rate'),
        t('tiers.sat')].map((h) => el('th', null, h)));
      $('#center-detail').textContent = '';
    } else {
      const c = centers.find((x) => x.key === state.center);
      if (c) {
        const peers = centers.filter((x) => x.tier === c.tier).length;
        const row = el('tr');
        row.dataset.center = c.key;
        row.append(el('td', null, c.name), el('td', 'num', c.windows), el('td', 'num', c.volume),
          el('td', 'num', pct(c.on_time_rate)), el('td', 'num', pct(c.satisfaction_rate)));
        rows.push(row);
        $('#tier-head').replaceChildren(...[t('tiers.center'), t('tiers.windows'), t('tiers.volume'), t('tiers.rate'),
          t('tiers.sat')].map((h) => el('th', null, h)));
        $('#center-detail').textContent = `${t('tier.' + c.tier)} · ${t('tiers.rank', { r: c.rank, n: peers })} · ${t('tiers.items')} ${c.delegated_items}`;
      }
    }
    out.replaceChildren(...rows);
  }

  async function refreshTiers() {
    try {
      state.centers = await api('/api/v1/metrics/centers');
      renderTiers();
    } catch (_) { /* later */ }
  }

  function relabel() {
    for (const e of document.querySelectorAll('[data-i18n-b]')) e.textContent = t(e.dataset.i18nB);
    renderBundles();
    renderTiers();
  }

  function init() {
    if (!$('#bundle-panel')) return;
    relabel();
    const lb = $('#lang');
    if (lb) lb.addEventListener('click', () => setTimeout(relabel, 0));
    $('#center-switch').addEventListener('change', (e) => { state.center = e.target.value; renderTiers(); });
    const tick = () => { refreshBundles(); refreshTiers(); };
    // Wait for the key (app.js asks for it once), then refresh with the rest of the page.
    const wait = setInterval(() => { if (localStorage.getItem(KEY)) { clearInterval(wait); tick(); setInterval(tick, REFRESH_MS); } }, 500);
  }
  document.addEventListener('DOMContentLoaded', init);
})();
