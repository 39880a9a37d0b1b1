// The province page (省级监察): districts ranked, red cards by district, the provincial board, and a
// case's timeline on click. Chinese first; EN switches. The key (if the province set one) is kept
// in localStorage and sent as Authorization: Bearer.
(() => {
  'use strict';
  const T = {
    zh: { title: '省级监察', subtitle: '各区县办件数据汇聚 · 预警 · 对账 · 见证', key: '访问密钥', lang: 'EN',
      ranking: '区县排名', redcards: '各区县红牌', board: '省级预警看板', timeline: '办件时间线',
      'col.rank': '名次', 'col.district': '区县', 'col.standing': '综合按时率', 'col.cases': '办件量', 'col.open': '在办',
      'col.overdue': '超期在办', 'col.red': '红牌', 'col.yellow': '黄牌', 'col.anomalies': '异常', 'col.alarms': '告警',
      'col.case': '办件编号', 'col.department': '部门', 'col.level': '等级', 'col.status': '状态', 'col.threshold': '触发时间',
      updated: '更新于', all: '全部区县', alarm: '见证告警', ask: '请输入省级访问密钥',
      red: '红牌', yellow: '黄牌', severe: '严重超期', issued: '已发出', answered: '已答复', escalated: '督办中',
      open: '在办', concluded: '已办结', refused: '不予受理', withdrawn: '已撤回', closed: '已关闭',
      'step.submitted': '收件', 'step.supplement_requested': '补正告知', 'step.supplement_received': '补正收件',
      'step.accepted': '受理', 'step.refused': '不予受理', 'step.undertaken': '承办', 'step.reviewed': '审核',
      'step.decided': '决定', 'step.concluded': '办结', 'step.delivered': '送达', 'step.suspended': '特别程序',
      'step.resumed': '恢复计时', 'step.extended': '延期', 'step.fee_charged': '收费', 'step.withdrawn': '撤回',
      'step.rated': '评议', 'step.deadlines_settled': '期限重算',
      'act.Issued': '预警发出', 'act.Answered': '答复', 'act.Escalated': '督办', 'act.Closed': '关闭', 'act.Withdrawn': '撤销' },
    en: { title: 'Provincial supervision', subtitle: 'Every district\'s cases · warnings · reconciliation · witness',
      key: 'API key', lang: '中文', ranking: 'Districts ranked', redcards: 'Red cards by district',
      board: 'Provincial board', timeline: 'Case timeline',
      'col.rank': 'Rank', 'col.district': 'District', 'col.standing': 'Standing on-time rate', 'col.cases': 'Cases',
      'col.open': 'Open', 'col.overdue': 'Overdue', 'col.red': 'Red', 'col.yellow': 'Yellow', 'col.anomalies': 'Anomalies',
      'col.alarms': 'Alarms', 'col.case': 'Case', 'col.department': 'Department', 'col.level': 'Level',
      'col.status': 'Status', 'col.threshold': 'Threshold', updated: 'Updated', all: 'all districts',
      alarm: 'Witness alarm', ask: 'The province\'s API key',
      red: 'red', yellow: 'yellow', severe: 'severe', issued: 'issued', answered: 'answered', escalated: 'escalated',
      open: 'open', concluded: 'concluded', refused: 'refused', withdrawn: 'withdrawn', closed: 'closed',
      'act.Issued': 'warning issued', 'act.Answered': 'answered', 'act.Escalated': 'escalated', 'act.Closed': 'closed',
      'act.Withdrawn': 'withdrawn' },
  };
  const state = { lang: localStorage.getItem('esup.province.lang') || 'zh', key: localStorage.getItem('esup.province.key') || '',
    district: null, data: null };
  const $ = (s) => document.querySelector(s);
  const t = (k) => (T[state.lang] && T[state.lang][k]) || (state.lang === 'zh' && T.zh[k])
    || (k.startsWith('step.') ? k.slice(5) : k.startsWith('act.') ? k.slice(4) : k);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const kid of kids) e.append(kid == null ? '' : String(kid));
    return e;
  };
  async function api(path) {
    const headers = state.key ? { Authorization: 'Bearer ' + state.key } : {};
    const r = await fetch(path, { headers });
    if (r.status === 401) {
      const k = window.prompt(t('ask'));
      if (k) { state.key = k; localStorage.setItem('esup.province.key', k); return api(path); }
    }
    if (!r.ok) throw new Error(path + ' ' + r.status);
    return r.json();
  }
  const pct = (v) => (v == null ? '—' : v.toFixed(1) + '%');
  const time = (v) => (v ? v.replace('T', ' ').slice(0, 16) : '—');
  function labels() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    document.title = t('title');
    $('#lang').textContent = t('lang');
  }
  function drawDistricts(districts) {
    const body = $('#districts tbody');
    body.replaceChildren();
    const bars = $('#bars');
    bars.replaceChildren();
    const most = Math.max(1, ...districts.map((d) => d.red_cards));
    for (const d of districts) {
      const tr = el('tr', { 'data-district': d.district }, );
      tr.append(el('td', {}, d.rank), el('td', {}, d.district), el('td', {}, pct(d.standing_rate)), el('td', {}, d.cases),
        el('td', {}, d.open), el('td', {}, d.overdue), el('td', { class: 'red' }, d.red_cards),
        el('td', { class: 'yellow' }, (d.warnings && d.warnings.yellow) || 0), el('td', {}, d.open_anomalies),
        el('td', d.alarms ? { class: 'red' } : {}, d.alarms));
      tr.addEventListener('click', () => { state.district = state.district === d.district ? null : d.district; refresh(); });
      body.append(tr);
      const row = el('div', { class: 'bar' }, d.district);
      const track = el('div', {});
      const fill = el('div', { class: 'fill' });
      fill.style.width = (100 * d.red_cards / most) + '%';
      track.append(fill);
      row.append(track, el('span', {}, d.red_cards));
      bars.append(row);
    }
  }
  function drawBoard(warnings) {
    const body = $('#board tbody');
    body.replaceChildren();
    $('#board-scope').textContent = state.district || t('all');
    for (const w of warnings) {
      const tr = el('tr', {});
      tr.append(el('td', {}, w.district), el('td', {}, w.case_no), el('td', {}, w.department || '—'),
        el('td', { class: w.level === 'yellow' ? 'yellow' : 'red' }, t(w.level)), el('td', {}, t(w.status)),
        el('td', {}, time(w.threshold_at)));
      tr.addEventListener('click', () => openCase(w.district, w.case_no));
      body.append(tr);
    }
  }
  async function openCase(district, caseNo) {
    const c = await api(`/api/v1/province/districts/${encodeURIComponent(district)}/cases/${encodeURIComponent(caseNo)}`);
    $('#case-title').textContent = `${district} · ${caseNo} · ${t(c.status || '')}`;
    const list = $('#timeline');
    list.replaceChildren();
    for (const e of c.events) {
      const what = e.kind === 'step' ? t('step.' + e.step) : `${t('act.' + e.type)} ${t(e.level || '')}`;
      list.append(el('li', {}, `${time(e.occurred_at || e.recorded_at)}  ${what}  (#${e.position})`));
    }
    $('#case-panel').hidden = false;
  }
  async function refresh() {
    const [d, b, a] = await Promise.all([api('/api/v1/province/districts'),
      api('/api/v1/province/warnings' + (state.district ? '?district=' + encodeURIComponent(state.district) : '')),
      api('/api/v1/province/alarms')]);
    drawDistricts(d.districts);
    drawBoard(b.warnings);
    const box = $('#alarms');
    box.hidden = !a.alarms.length;
    box.replaceChildren(...a.alarms.map((x) => el('div', {}, `${t('alarm')} · ${x.district} · ${x.detail}`)));
    $('#updated').textContent = `${t('updated')} ${new Date().toLocaleTimeString(state.lang === 'zh' ? 'zh-CN' : 'en-US')}`;
  }
  document.addEventListener('DOMContentLoaded', () => {
    labels();
    $('#lang').addEventListener('click', () => {
      state.lang = state.lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('esup.province.lang', state.lang);
      labels();
      refresh();
    });
    $('#keybtn').addEventListener('click', () => {
      const k = window.prompt(t('ask'), state.key);
      if (k != null) { state.key = k; localStorage.setItem('esup.province.key', k); refresh(); }
    });
    refresh().catch((e) => { $('#updated').textContent = String(e); });
    setInterval(() => refresh().catch(() => {}), 5000);
  });
})();
