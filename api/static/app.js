/* esup live monitoring dashboard (电子监察实时监控).
 *
 * Plain browser JavaScript, no build step and nothing loaded from elsewhere. Reads:
 *   GET /api/v1/monitor/summary   today's counters, trend, hourly profile, department league table
 *   GET /api/v1/warnings          the red and yellow board (if the warnings module is installed)
 *   GET /api/v1/monitor/stream    live steps, warnings and anomalies (server-sent events)
 *   GET /api/v1/cases/{no}[/events]  a case's timeline, on click
 *   GET /api/v1/anomalies         the anomaly panel (counts by type, the latest, their evidence)
 *   POST /api/v1/warnings/{id}/answer|escalate|close  an officer's (or department's) act on a card
 * The stream is read with fetch (not EventSource) so the key travels in the Authorization header,
 * never in a URL; it resumes with Last-Event-ID after any drop. Everything shown is inserted as
 * text (never as HTML), and applicants' personal data is never displayed.
 */
'use strict';

(() => {
  const TZ = 'Asia/Shanghai';
  const STORE = { key: 'esup.monitor.key', lang: 'esup.monitor.lang', big: 'esup.monitor.big' };
  const FEED_MAX = 80;
  const REFRESH_MS = 30000;
  const WATCHDOG_MS = 45000; // the server sends a heartbeat every ~15 s
  const CLOSED_WARNING = new Set(['closed', 'resolved', 'cancelled', 'canceled', 'revoked', 'withdrawn', 'lifted',
    'superseded', 'expired', 'void']);
  const LEVEL_RANK = { severe: 3, red: 2, yellow: 1 };

  const T = {
    zh: {
      title: '电子监察实时监控', subtitle: '政务服务中心 · 行政审批电子监察系统', date: '统计日期',
      'live.off': '未连接', 'live.connecting': '连接中', 'live.live': '实时', 'live.retry': '重连中',
      bigscreen: '大屏模式', key: '访问密钥', lang: 'EN',
      'kpi.received': '今日办件量', 'kpi.concluded': '今日办结', 'kpi.ontime': '按时办结率', 'kpi.open': '在办件',
      'kpi.yellow': '黄牌预警', 'kpi.red': '红牌预警', 'kpi.day': '{d} 办件量', 'kpi.dayConcluded': '{d} 办结',
      'note.accepted': '受理 {n} 件', 'note.closedOther': '不予受理 {a} · 撤件 {b}', 'note.ontime': '按时 {a} · 超期 {b}',
      'note.open': '超承诺期限 {a} · 特别程序 {b}', 'note.newToday': '今日新发 {n}', 'note.severe': '其中超法定时限 {n}',
      'note.noWarnings': '预警模块未启用',
      'board.title': '预警纠错', 'board.sub': '红黄牌实时督办', 'board.empty': '暂无预警', 'board.missing': '预警模块尚未启用',
      'trend.title': '办件趋势', 'hourly.title': '分时办件', 'legend.received': '收件', 'legend.concluded': '办结',
      'legend.late': '超期办结', 'feed.title': '实时动态', 'feed.sub': '办件环节 · 预警 · 异常',
      'feed.empty': '等待新的办件环节…', 'league.title': '部门排名', 'league.rank': '排名', 'league.dept': '部门',
      'league.received': '当日收件', 'league.concluded': '当日办结', 'league.period': '期间办件',
      'league.rate': '按时办结率', 'league.open': '在办', 'league.overdue': '超期在办',
      'league.sub': '近 {n} 日，按按时办结率排序', 'league.empty': '暂无数据',
      foot: '数据来源：各部门审批系统实时报送的办件环节（不可篡改的事件账本）。页面不显示申请人个人信息。',
      updated: '更新于 {t}', failed: '数据更新失败（{e}），稍后重试',
      'keydlg.title': '请输入访问密钥', 'keydlg.help': '监察人员、省级系统或部门的 API 密钥。密钥只保存在本浏览器（localStorage）中。',
      'keydlg.save': '进入', 'keydlg.forget': '清除密钥', 'keydlg.invalid': '密钥无效或已吊销，请重新输入。',
      'keydlg.empty': '请输入密钥。', latest: '无当日数据，查看 {d}', scope: '本部门视图：{d}',
      due: '承诺期限 {t}', left: '剩余 {d}', over: '已超期 {d}', overLegal: '已超法定期限 {d}',
      day: '天', hour: '小时', minute: '分钟', warning: '预警', anomaly: '异常',
      'tl.item': '事项', 'tl.dept': '部门', 'tl.window': '窗口', 'tl.status': '状态', 'tl.accepted': '受理时间',
      'tl.promised': '承诺期限', 'tl.legal': '法定期限', 'tl.concluded': '办结时间', 'tl.ontime': '是否按时',
      'tl.warn': '预警', 'tl.recorded': '录入 {t}', 'tl.loading': '加载中…', 'tl.error': '无法读取该办件（{e}）',
      yes: '是', no: '否', suspended: '（特别程序中）', 'tl.result': '结果', 'tl.granted': '准予', 'tl.denied': '不予',
      'tl.score': '评价', 'tl.amount': '收费 {n} 元', 'tl.procedure': '程序', 'tl.extended': '延期 {n}',
      'kpi.openNow': '当前在办件', 'note.asOf': '截至 {d} 24:00', 'board.now': '实时 · 当前未关闭的预警',
      'board.asOf': '截至 {d} 24:00 · 按业务时间', 'league.rate': '综合按时率',
      'league.sub': '近 {n} 日 · 综合按时率 = 按时办结 ÷（办结 + 超期在办）',
      'anom.title': '异常监测', 'anom.sub': '{a} 至 {b} · 共 {n} 条', 'anom.empty': '暂无异常', 'anom.missing': '异常模块尚未启用',
      'anom.open': '查看办件', 'ev.occurred': '发生 {t}', 'ev.recorded': '录入 {t}',
      'act.answer': '答复', 'act.escalate': '督办', 'act.close': '关闭', 'act.answer.title': '答复预警（纠错说明）',
      'act.escalate.title': '督办', 'act.close.title': '关闭预警', 'act.answer.text': '说明', 'act.escalate.text': '督办意见',
      'act.close.text': '关闭说明', 'act.due': '督办期限（北京时间；留空按默认期限）', 'act.otherKey': '使用其他密钥',
      'act.needKey.department': '答复须使用责任部门的密钥。', 'act.needKey.officer': '督办和关闭须使用监察人员的密钥。',
      'act.cancel': '取消', 'act.submit': '提交', 'act.needText': '请填写说明。', escalatedDue: '督办期限 {t}',
    },
    en: {
      title: 'Live supervision monitor', subtitle: 'Government service center · e-supervision of approvals', date: 'Day',
      'live.off': 'offline', 'live.connecting': 'connecting', 'live.live': 'live', 'live.retry': 'reconnecting',
      bigscreen: 'Big screen', key: 'API key', lang: '中文',
      'kpi.received': 'Received today', 'kpi.concluded': 'Concluded today', 'kpi.ontime': 'On-time rate',
      'kpi.open': 'Open cases', 'kpi.yellow': 'Yellow cards', 'kpi.red': 'Red cards', 'kpi.day': 'Received {d}',
      'kpi.dayConcluded': 'Concluded {d}', 'note.accepted': '{n} accepted', 'note.closedOther': '{a} refused · {b} withdrawn',
      'note.ontime': '{a} on time · {b} late', 'note.open': '{a} past promise · {b} suspended',
      'note.newToday': '{n} issued today', 'note.severe': '{n} past the legal limit', 'note.noWarnings': 'warnings module not installed',
      'board.title': 'Warnings', 'board.sub': 'red and yellow cards', 'board.empty': 'No warnings',
      'board.missing': 'The warnings module is not installed yet', 'trend.title': 'Trend', 'hourly.title': 'By hour',
      'legend.received': 'received', 'legend.concluded': 'concluded', 'legend.late': 'concluded late',
      'feed.title': 'Live', 'feed.sub': 'steps · warnings · anomalies', 'feed.empty': 'Waiting for steps…',
      'league.title': 'Department league', 'league.rank': '#', 'league.dept': 'Department', 'league.received': 'Received',
      'league.concluded': 'Concluded', 'league.period': 'Period', 'league.rate': 'On time', 'league.open': 'Open',
      'league.overdue': 'Overdue', 'league.sub': 'last {n} days, by on-time rate', 'league.empty': 'No data',
      foot: 'Source: every case step reported by the departments\' approval systems (a tamper-evident ledger). No personal data is shown.',
      updated: 'updated {t}', failed: 'update failed ({e}); retrying',
      'keydlg.title': 'Enter your API key', 'keydlg.help': 'An officer, province or department key. It is kept only in this browser (localStorage).',
      'keydlg.save': 'Open', 'keydlg.forget': 'Forget key', 'keydlg.invalid': 'That key is invalid or revoked.',
      'keydlg.empty': 'Enter a key.', latest: 'no data that day; show {d}', scope: 'department view: {d}',
      due: 'due {t}', left: '{d} left', over: '{d} overdue', overLegal: '{d} past the legal limit',
      day: 'd', hour: 'h', minute: 'min', warning: 'warning', anomaly: 'anomaly',
      'tl.item': 'Item', 'tl.dept': 'Department', 'tl.window': 'Window', 'tl.status': 'Status', 'tl.accepted': 'Accepted',
      'tl.promised': 'Promised by', 'tl.legal': 'Legal limit', 'tl.concluded': 'Concluded', 'tl.ontime': 'On time',
      'tl.warn': 'Warning', 'tl.recorded': 'recorded {t}', 'tl.loading': 'loading…', 'tl.error': 'cannot read this case ({e})',
      yes: 'yes', no: 'no', suspended: ' (suspended)', 'tl.result': 'result', 'tl.granted': 'granted', 'tl.denied': 'denied',
      'tl.score': 'rating', 'tl.amount': 'fee ¥{n}', 'tl.procedure': 'procedure', 'tl.extended': 'extended by {n}',
      'kpi.openNow': 'Open now', 'note.asOf': 'as of {d} 24:00', 'board.now': 'live · open cards now',
      'board.asOf': 'as of {d} 24:00 · by business time', 'league.rate': 'On time (overdue counted)',
      'league.sub': 'last {n} days · on time ÷ (concluded + overdue open)',
      'anom.title': 'Anomalies', 'anom.sub': '{a} to {b} · {n} in all', 'anom.empty': 'No anomalies',
      'anom.missing': 'The anomalies module is not installed yet', 'anom.open': 'open case', 'ev.occurred': 'happened {t}',
      'ev.recorded': 'recorded {t}', 'act.answer': 'Answer', 'act.escalate': 'Escalate', 'act.close': 'Close',
      'act.answer.title': 'Answer the warning', 'act.escalate.title': 'Escalate (supervise with a deadline)',
      'act.close.title': 'Close the warning', 'act.answer.text': 'Explanation', 'act.escalate.text': 'Note',
      'act.close.text': 'Note', 'act.due': 'Deadline (China time; empty: the default)', 'act.otherKey': 'Use another key',
      'act.needKey.department': 'Answering takes the responsible department\'s key.',
      'act.needKey.officer': 'Escalating and closing take an officer\'s key.', 'act.cancel': 'Cancel', 'act.submit': 'Submit',
      'act.needText': 'Write an explanation.', escalatedDue: 'escalated, due {t}',
    },
  };
  const STEPS = {
    zh: { submitted: '收件', supplement_requested: '补正告知', supplement_received: '补齐补正', accepted: '受理',
      refused: '不予受理', undertaken: '承办', reviewed: '审核', decided: '决定', concluded: '办结', delivered: '送达',
      suspended: '特别程序', resumed: '程序结束', extended: '延期', fee_charged: '收费', withdrawn: '撤件', rated: '评价' },
    en: { submitted: 'received', supplement_requested: 'supplement asked', supplement_received: 'supplemented',
      accepted: 'accepted', refused: 'refused', undertaken: 'undertaken', reviewed: 'reviewed', decided: 'decided',
      concluded: 'concluded', delivered: 'delivered', suspended: 'suspended', resumed: 'resumed', extended: 'extended',
      fee_charged: 'fee', withdrawn: 'withdrawn', rated: 'rated' },
  };
  const STATUS = {
    zh: { submitted: '已收件', supplement_requested: '补正中', supplemented: '已补正', accepted: '已受理', undertaken: '承办中',
      reviewed: '审核中', decided: '已决定', concluded: '已办结', refused: '不予受理', withdrawn: '已撤件' },
    en: { supplement_requested: 'awaiting supplement', supplemented: 'supplemented', undertaken: 'undertaken',
      reviewed: 'reviewed', decided: 'decided', concluded: 'concluded', refused: 'refused', withdrawn: 'withdrawn',
      submitted: 'received', accepted: 'accepted' },
  };
  const LEVELS = { zh: { yellow: '黄牌', red: '红牌', severe: '严重超期' }, en: { yellow: 'Yellow', red: 'Red', severe: 'Severe' } };
  const FLAGS = {
    zh: { late_entry: '延迟录入', time_backwards: '时间倒序', skipped_step: '跳过环节', out_of_order: '环节倒序',
      fee_above_standard: '超标准收费', fee_on_free_item: '免费事项收费', no_reason: '不予受理无理由',
      item_not_in_force: '事项未生效', department_mismatch: '部门不符', concluded_while_suspended: '特别程序中办结',
      bulk_entry: '集中录入', missing_actor: '未登记经办人', concluded_past_promise: '超承诺时限办结',
      acceptance_overdue: '超期未受理', on_the_spot_overdue: '即办件未当场办结', legal_limit_exceeded: '超法定时限',
      suspension_frequent: '频繁特别程序', suspension_long: '特别程序过长', cleared: '已澄清' },
    en: { late_entry: 'late entry', time_backwards: 'time backwards', skipped_step: 'skipped step',
      out_of_order: 'out of order', fee_above_standard: 'fee above standard', fee_on_free_item: 'fee on a free item',
      no_reason: 'refused without reason', item_not_in_force: 'item not in force', department_mismatch: 'other department',
      concluded_while_suspended: 'concluded while suspended', bulk_entry: 'bulk entry', missing_actor: 'no staff named',
      concluded_past_promise: 'concluded late', acceptance_overdue: 'not accepted in time',
      on_the_spot_overdue: 'on-the-spot item not done', legal_limit_exceeded: 'past the legal limit',
      suspension_frequent: 'frequent suspensions', suspension_long: 'long suspension', cleared: 'cleared' },
  };
  const RESULTS = { zh: { issued: '出证', returned: '退回', voided: '作废', forwarded: '转报', supplement_timeout: '补正超时驳回',
    completed: '办结' }, en: { issued: 'issued', returned: 'returned', voided: 'voided', forwarded: 'forwarded',
    supplement_timeout: 'supplement timed out', completed: 'completed' } };
  const PROCEDURES = { zh: { hearing: '听证', tender: '招标', auction: '拍卖', inspection: '检验', testing: '检测',
    quarantine: '检疫', appraisal: '鉴定', expert_review: '专家评审', other: '其他' }, en: { hearing: 'hearing',
    tender: 'tender', auction: 'auction', inspection: 'inspection', testing: 'testing', quarantine: 'quarantine',
    appraisal: 'appraisal', expert_review: 'expert review', other: 'other' } };
  const TYPES = { zh: { time: '时效', procedure: '流程', content: '内容', discretion: '裁量', risk: '风险防控', escalation: '督办' },
    en: { time: 'timeliness', procedure: 'procedure', content: 'content', discretion: 'discretion', risk: 'risk',
      escalation: 'escalation' } };
  const WSTATUS = { zh: { issued: '待答复', answered: '已答复', escalated: '督办中', closed: '已关闭', withdrawn: '已撤销' },
    en: { issued: 'awaiting answer', answered: 'answered', escalated: 'escalated', closed: 'closed', withdrawn: 'withdrawn' } };
  // Who may do what to a card (the API's rule): a department answers, an officer escalates or closes.
  const ACTS = { answer: 'department', escalate: 'officer', close: 'officer' };

  // -- the API's field names in one place (REST and the stream may rename fields: adjust here) --
  const F = {
    anomalyType: (a) => a.type ?? a.category,
    anomalyRule: (a) => a.rule ?? a.code,
    anomalyReason: (a) => a.reason ?? a.summary ?? '',
    anomalyWhen: (a) => a.occurred_at ?? a.detected_at,
    anomalyEvidence: (a) => (Array.isArray(a.evidence) ? a.evidence : []),
    anomalyCounts: (r) => r.counts || {},
    warningStatus: (w) => String(w.status || '').toLowerCase(),
    escalationDue: (w) => w.escalation_due_at ?? w.due_at ?? null,
    // The league's ranking figure: on time / (concluded + overdue open), else the plain on-time rate.
    standingRate: (d) => fraction(d.standing_rate !== undefined ? d.standing_rate : d.on_time_rate),
    onTimeRate: (c) => fraction(c.on_time_rate),
  };
  // Rates arrive as percentages (0-100, one decimal), like every rate the API answers.
  function fraction(v) { return v; }
  const UNITS = { zh: { working_days: '个工作日', working_hours: '个工作小时', calendar_days: '个自然日' },
    en: { working_days: ' working days', working_hours: ' working hours', calendar_days: ' calendar days' } };

  const state = {
    key: localStorage.getItem(STORE.key) || '',
    lang: localStorage.getItem(STORE.lang) || 'zh',
    day: null, // null: today
    names: { dept: {}, item: {} },
    summary: null,
    warnings: [],
    warningsMissing: false,
    warningsLoaded: false,
    seenWarnings: new Set(),
    lastId: null,
    started: false,
    openCase: null,
    anomalies: null,
    anomaliesMissing: false,
    openAnomalies: new Set(),
    act: null,
  };
  const $ = (sel) => document.querySelector(sel);

  // -- text and formatting -----------------------------------------------------------------

  function t(key, vars) {
    let s = (T[state.lang] && T[state.lang][key]) || T.zh[key] || key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
    return s;
  }
  // English mode falls back to the code, never to the Chinese label.
  const label = (table, code) => (table[state.lang] && table[state.lang][code]) || (state.lang === 'zh' && table.zh[code]) || code;
  const nf = () => new Intl.NumberFormat(state.lang === 'zh' ? 'zh-CN' : 'en-US');
  const num = (n) => (n === null || n === undefined ? '—' : nf().format(n));
  // Rates arrive as percentages (0-100), like every rate the API answers.
  const pct = (r) => (r === null || r === undefined ? '—' : r.toFixed(r >= 99.95 || r === 0 ? 0 : 1) + '%');

  function parts(date) {
    const out = {};
    for (const p of new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(date)) out[p.type] = p.value;
    return out;
  }
  const localDay = (date) => { const p = parts(date); return `${p.year}-${p.month}-${p.day}`; };
  function fmtTime(iso, withSeconds) {
    if (!iso) return '—';
    const d = new Date(iso);
    const p = parts(d);
    const hm = `${p.hour}:${p.minute}` + (withSeconds ? `:${p.second}` : '');
    return localDay(d) === localDay(new Date()) ? hm : `${p.month}-${p.day} ${hm}`;
  }
  function fmtFull(iso) {
    if (!iso) return '—';
    const p = parts(new Date(iso));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }
  function fmtSpan(ms) {
    ms = Math.abs(ms);
    const days = Math.floor(ms / 86400000), hours = Math.floor((ms % 86400000) / 3600000);
    const minutes = Math.max(1, Math.floor((ms % 3600000) / 60000));
    if (days) return `${days}${t('day')}${hours ? hours + t('hour') : ''}`;
    if (hours) return `${hours}${t('hour')}${Math.floor((ms % 3600000) / 60000)}${t('minute')}`;
    return `${minutes}${t('minute')}`;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const deptName = (code) => state.names.dept[code] || code || '';
  const itemName = (code) => state.names.item[code] || '';

  // -- API -----------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, detail) { super(detail || 'HTTP ' + status); this.status = status; }
  }
  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + state.key, Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) {
      let detail = '';
      try { detail = (await r.json()).detail; } catch (_) { /* not JSON */ }
      if (r.status === 401) askKey(t('keydlg.invalid'));
      throw new HttpError(r.status, detail);
    }
    return r.json();
  }

  // -- reference names ----------------------------------------------------------------------

  async function loadNames() {
    const [depts, items, centers] = await Promise.allSettled([api('/api/v1/departments'), api('/api/v1/items'), api('/api/v1/centers')]);
    if (depts.status === 'fulfilled') for (const d of depts.value.departments || []) state.names.dept[d.code] = d.name;
    if (items.status === 'fulfilled') for (const i of items.value.items || []) state.names.item[i.code] = i.name;
    if (centers.status === 'fulfilled') {
      const list = centers.value.centers || [];
      const center = list.find((c) => c.tier === 'district') || list[0];
      if (center) { state.centerName = center.name; showCenter(); }
    }
  }

  function showCenter() { // (a language switch resets the subtitle: put the center's name back)
    if (state.centerName) $('#center-name').textContent = `${state.centerName} · ${t('subtitle').split(' · ').pop()}`;
  }

  // -- summary: counters, charts, league -----------------------------------------------------

  // Refreshes are throttled, not debounced: a steady flow of steps must not postpone them forever.
  const throttled = (fn) => {
    let timer = null, due = Infinity;
    const schedule = (delay) => {
      if (timer !== null && due <= Date.now() + delay) return; // one is already coming sooner
      clearTimeout(timer);
      due = Date.now() + delay;
      timer = setTimeout(() => { timer = null; due = Infinity; fn(); }, delay);
    };
    schedule.cancel = () => { clearTimeout(timer); timer = null; due = Infinity; };
    return schedule;
  };
  const scheduleSummary = throttled(() => refreshSummary());
  const scheduleWarnings = throttled(() => refreshWarnings());
  const scheduleAnomalies = throttled(() => refreshAnomalies());
  async function refreshSummary() {
    scheduleSummary.cancel();
    const q = new URLSearchParams({ days: '30' });
    if (state.day) q.set('date', state.day);
    try {
      state.summary = await api('/api/v1/monitor/summary?' + q);
      renderSummary();
      $('#updated').textContent = t('updated', { t: fmtTime(new Date().toISOString(), true) });
    } catch (e) {
      if (e.status !== 401) $('#updated').textContent = t('failed', { e: e.message });
    }
    scheduleSummary(REFRESH_MS);
  }

  function setKpi(id, value, note) {
    const box = document.getElementById(id);
    const v = box.querySelector('.value');
    if (v.textContent !== value && v.textContent !== '—') {
      box.classList.remove('bump');
      void box.offsetWidth; // restart the animation
      box.classList.add('bump');
    }
    v.textContent = value;
    box.querySelector('.note').textContent = note || '';
  }

  function renderSummary() {
    const s = state.summary;
    if (!s) return;
    const c = s.counters;
    const isToday = s.date === s.today;
    const shortDay = s.date.slice(5);
    $('#kpi-received .label').textContent = isToday ? t('kpi.received') : t('kpi.day', { d: shortDay });
    $('#kpi-concluded .label').textContent = isToday ? t('kpi.concluded') : t('kpi.dayConcluded', { d: shortDay });
    setKpi('kpi-received', num(c.received), t('note.accepted', { n: num(c.accepted) }));
    setKpi('kpi-concluded', num(c.concluded), t('note.closedOther', { a: num(c.refused), b: num(c.withdrawn) }));
    setKpi('kpi-ontime', pct(F.onTimeRate(c)), t('note.ontime', { a: num(c.on_time), b: num(c.late) }));
    // Open and overdue cases are counted now, whatever day is shown: say so on another day.
    $('#kpi-open .label').textContent = isToday ? t('kpi.open') : t('kpi.openNow');
    setKpi('kpi-open', num(c.open), t('note.open', { a: num(c.overdue), b: num(c.suspended) }));
    const dayInput = $('#day');
    if (!dayInput.value || !state.day) dayInput.value = s.date;
    const latest = $('#latest');
    if (s.latest_date && c.received === 0 && s.latest_date !== s.date) {
      latest.hidden = false;
      latest.textContent = t('latest', { d: s.latest_date });
      latest.dataset.day = s.latest_date;
    } else latest.hidden = true;
    const scope = s.scope && s.scope.departments;
    $('#scope-note').textContent = scope ? t('scope', { d: scope.map(deptName).join('、') }) : '';
    renderTrend(s);
    renderHourly(s);
    renderLeague(s);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function niceMax(v) {
    if (v <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function axes(root, W, H, m, max) {
    for (let i = 0; i <= 4; i++) {
      const y = m.t + (H - m.t - m.b) * (1 - i / 4);
      root.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, class: 'grid-line' }));
      root.appendChild(svg('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end', class: 'axis-label' }, nf().format(max * i / 4)));
    }
  }
  function renderTrend(s) {
    const W = 640, H = 230, m = { l: 44, r: 10, t: 12, b: 26 };
    const data = s.trend;
    const n = data.length;
    const max = niceMax(Math.max(1, ...data.map((d) => Math.max(d.received, d.concluded))));
    const band = (W - m.l - m.r) / n;
    const y = (v) => m.t + (H - m.t - m.b) * (1 - v / max);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, 'aria-label': t('trend.title') });
    root.appendChild(svg('rect', { x: m.l + band * (n - 1), y: m.t, width: band, height: H - m.t - m.b, class: 'today-mark' }));
    axes(root, W, H, m, max);
    const bw = Math.max(2, band * 0.36);
    const points = [];
    data.forEach((d, i) => {
      const x0 = m.l + band * i + band * 0.12;
      const g = svg('g', {});
      g.appendChild(svg('title', {}, `${d.date}  ${t('legend.received')} ${d.received} · ${t('legend.concluded')} ${d.concluded}` +
        (d.late ? ` · ${t('legend.late')} ${d.late}` : '')));
      g.appendChild(svg('rect', { x: x0, y: y(d.received), width: bw, height: y(0) - y(d.received), class: 'bar-received', rx: 1.5 }));
      g.appendChild(svg('rect', { x: x0 + bw, y: y(d.concluded), width: bw, height: y(0) - y(d.concluded), class: 'bar-concluded', rx: 1.5 }));
      if (d.late) g.appendChild(svg('rect', { x: x0 + bw, y: y(d.concluded), width: bw, height: y(0) - y(d.late), class: 'bar-late' }));
      root.appendChild(g);
      points.push(`${(m.l + band * i + band / 2).toFixed(1)},${y(d.concluded).toFixed(1)}`);
      const every = Math.ceil(n / 8);
      if ((n - 1 - i) % every === 0) {
        root.appendChild(svg('text', { x: m.l + band * i + band / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis-label' }, d.date.slice(5)));
      }
    });
    root.appendChild(svg('polyline', { points: points.join(' '), class: 'line-concluded' }));
    $('#trend').replaceChildren(root);
    $('#trend-range').textContent = `${data[0].date} — ${data[n - 1].date}`;
  }
  function renderHourly(s) {
    const W = 640, H = 170, m = { l: 44, r: 10, t: 10, b: 24 };
    const data = s.hourly;
    const max = niceMax(Math.max(1, ...data.map((d) => Math.max(d.received, d.concluded))));
    const band = (W - m.l - m.r) / 24;
    const y = (v) => m.t + (H - m.t - m.b) * (1 - v / max);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, 'aria-label': t('hourly.title') });
    axes(root, W, H, m, max);
    const bw = band * 0.38;
    data.forEach((d, i) => {
      const x0 = m.l + band * i + band * 0.12;
      const g = svg('g', {});
      g.appendChild(svg('title', {}, `${String(d.hour).padStart(2, '0')}:00  ${t('legend.received')} ${d.received} · ${t('legend.concluded')} ${d.concluded}`));
      g.appendChild(svg('rect', { x: x0, y: y(d.received), width: bw, height: y(0) - y(d.received), class: 'bar-received', rx: 1.5 }));
      g.appendChild(svg('rect', { x: x0 + bw, y: y(d.concluded), width: bw, height: y(0) - y(d.concluded), class: 'bar-concluded', rx: 1.5 }));
      root.appendChild(g);
      if (i % 2 === 0) root.appendChild(svg('text', { x: m.l + band * i + band / 2, y: H - 7, 'text-anchor': 'middle', class: 'axis-label' }, String(d.hour).padStart(2, '0')));
    });
    $('#hourly').replaceChildren(root);
    $('#hourly-day').textContent = s.date;
  }
  function renderLeague(s) {
    const body = $('#league tbody');
    const rows = s.departments.map((d) => {
      const tr = el('tr');
      tr.dataset.department = d.department;
      const rank = el('td', 'rank');
      rank.appendChild(el('span', null, d.rank));
      const dept = el('td', 'dept');
      dept.appendChild(el('b', null, d.name || deptName(d.department)));
      dept.appendChild(el('small', null, d.department));
      const rate = el('td', 'rate');
      const bar = el('div', 'ratebar');
      const track = el('div', 'track');
      const r = F.standingRate(d);
      const fill = el('div', 'fill' + (r !== null && r !== undefined && r < 90 ? ' low' : ''));
      fill.style.width = (r || 0).toFixed(1) + '%';
      track.appendChild(fill);
      bar.append(track, el('span', null, pct(r)));
      rate.title = `${t('kpi.ontime')} ${pct(F.onTimeRate(d))}`;
      rate.appendChild(bar);
      tr.append(rank, dept, el('td', 'num', num(d.today.received)), el('td', 'num', num(d.today.concluded)),
        el('td', 'num', num(d.period.received)), rate, el('td', 'num', num(d.open)),
        el('td', 'num' + (d.overdue ? ' hot' : ''), num(d.overdue)));
      return tr;
    });
    if (!rows.length) {
      const tr = el('tr');
      const td = el('td', 'empty', t('league.empty'));
      td.colSpan = 8;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $('#league-sub').textContent = t('league.sub', { n: s.period_days });
  }

  // -- warnings board ----------------------------------------------------------------------------

  async function refreshWarnings() {
    scheduleWarnings.cancel();
    try {
      const day = state.day;
      const w = await api(boardPath(day));
      if (day !== state.day) return; // the day changed meanwhile: a newer refresh follows
      state.warnings = Array.isArray(w.warnings) ? w.warnings : [];
      state.warningsMissing = false;
      state.warningsLoaded = true;
    } catch (e) {
      if (e.status === 404) { state.warnings = []; state.warningsMissing = true; state.warningsLoaded = true; }
    }
    renderWarnings();
    scheduleWarnings(REFRESH_MS);
  }
  // The board now, or as it stood at the end of the chosen day (by business time).
  function dayEnd(day) { return new Date(Date.parse(day + 'T00:00:00+08:00') + 86400000).toISOString(); }
  function boardPath(day) {
    if (!day) return '/api/v1/warnings';
    return '/api/v1/warnings?' + new URLSearchParams({ as_of: dayEnd(day), by: 'occurred' });
  }
  function upsertWarning(d) {
    // A streamed act carries the board's fields (a later act: its status); show it at once.
    if (!d.id || !d.case_no || state.day) return; // a past day's board does not move
    const i = state.warnings.findIndex((w) => w.id === d.id);
    const merged = { ...(i >= 0 ? state.warnings[i] : {}), ...d };
    if (i >= 0) state.warnings[i] = merged;
    else state.warnings.push(merged);
    state.warningsMissing = false;
    renderWarnings();
  }
  function activeWarnings() {
    const best = new Map(); // one card per case: its most severe active warning
    for (const w of state.warnings) {
      if (!w || !LEVEL_RANK[w.level] || CLOSED_WARNING.has(F.warningStatus(w))) continue;
      const prev = best.get(w.case_no);
      if (!prev || LEVEL_RANK[w.level] > LEVEL_RANK[prev.level]) best.set(w.case_no, w);
    }
    return [...best.values()].sort((a, b) => (LEVEL_RANK[b.level] - LEVEL_RANK[a.level]) ||
      String(a.threshold_at || a.issued_at || '').localeCompare(String(b.threshold_at || b.issued_at || '')));
  }
  function dueText(w) {
    const now = Date.now();
    const promised = w.promised_due_at ? new Date(w.promised_due_at).getTime() : null;
    const legal = w.legal_due_at ? new Date(w.legal_due_at).getTime() : null;
    if (w.level === 'severe' && legal !== null) return t('overLegal', { d: fmtSpan(now - legal) });
    if (promised === null) return '';
    if (now >= promised) return t('over', { d: fmtSpan(now - promised) });
    return t('left', { d: fmtSpan(promised - now) });
  }
  function renderWarnings() {
    const list = activeWarnings();
    const items = list.map((w) => {
      const li = el('li', 'warn');
      li.dataset.case = w.case_no;
      li.dataset.level = w.level;
      const id = `${w.id}|${w.level}`;
      if (state.seenWarnings.size && !state.seenWarnings.has(id)) li.classList.add('fresh');
      li.dataset.id = w.id;
      const status = F.warningStatus(w);
      li.dataset.status = status;
      li.append(el('span', 'badge ' + w.level, label(LEVELS, w.level)), el('span', 'case', w.case_no), el('span', 'due', dueText(w)));
      const item = itemName(w.item_code);
      li.appendChild(el('span', 'who', [deptName(w.department), item || w.item_code,
        w.promised_due_at ? t('due', { t: fmtFull(w.promised_due_at) }) : ''].filter(Boolean).join(' · ')));
      const foot = el('span', 'wfoot');
      const esc = F.escalationDue(w);
      foot.appendChild(el('span', 'wstatus s-' + status, label(WSTATUS, status) +
        (status === 'escalated' && esc ? ' · ' + t('escalatedDue', { t: fmtFull(esc) }) : '')));
      if (!state.day) { // acts on the live board only
        const acts = el('span', 'acts');
        for (const act of Object.keys(ACTS)) {
          const b = el('button', 'act', t('act.' + act));
          b.type = 'button';
          b.dataset.act = act;
          b.addEventListener('click', (e) => { e.stopPropagation(); openAct(w, act); });
          acts.appendChild(b);
        }
        foot.appendChild(acts);
      }
      li.appendChild(foot);
      li.addEventListener('click', () => openCase(w.case_no));
      return li;
    });
    for (const w of list) state.seenWarnings.add(`${w.id}|${w.level}`);
    if (!state.seenWarnings.size) state.seenWarnings.add('');
    $('#warnings').replaceChildren(...items);
    const note = $('#board-note');
    note.hidden = items.length > 0;
    note.textContent = state.warningsMissing ? t('board.missing') : t('board.empty');
    $('#board-scope').textContent = state.day ? t('board.asOf', { d: state.day }) : t('board.now');
    $('#board-scope').dataset.scope = state.day ? 'day' : 'now';
    // Counters: cards open now; notes: issued today, and how many are past the legal limit.
    const today = localDay(new Date());
    const yellow = list.filter((w) => w.level === 'yellow');
    const red = list.filter((w) => w.level === 'red' || w.level === 'severe');
    const newToday = (ws) => ws.filter((w) => w.issued_at && localDay(new Date(w.issued_at)) === today).length;
    if (!state.warningsLoaded) return;
    if (state.warningsMissing) {
      setKpi('kpi-yellow', '—', t('note.noWarnings'));
      setKpi('kpi-red', '—', t('note.noWarnings'));
    } else if (state.day) {
      setKpi('kpi-yellow', num(yellow.length), t('note.asOf', { d: state.day }));
      setKpi('kpi-red', num(red.length), t('note.asOf', { d: state.day }));
    } else {
      setKpi('kpi-yellow', num(yellow.length), t('note.newToday', { n: newToday(yellow) }));
      setKpi('kpi-red', num(red.length), t('note.severe', { n: red.filter((w) => w.level === 'severe').length }) +
        ' · ' + t('note.newToday', { n: newToday(red) }));
    }
  }

  function refreshDay() {
    state.seenWarnings = new Set();
    refreshSummary();
    refreshWarnings();
    refreshAnomalies();
  }

  // -- acts on a card: answer (纠错说明), escalate (督办, with a deadline), close ------------------

  function keyRole() { return state.summary && state.summary.scope ? state.summary.scope.role : null; }
  function openAct(w, act) {
    state.act = { w, act };
    $('#act-dialog').dataset.act = act;
    $('#act-title').textContent = t(`act.${act}.title`);
    $('#act-case').textContent = `${w.case_no} · ${label(LEVELS, w.level)} · ${deptName(w.department)}`;
    $('#act-text-label').textContent = t(`act.${act}.text`);
    $('#act-text').value = '';
    $('#act-due-row').hidden = act !== 'escalate';
    $('#act-due').value = '';
    // The act needs a key of its role: offer to use another one (kept for this act only).
    const other = keyRole() !== ACTS[act];
    $('#act-key-row').open = other;
    $('#act-key').value = '';
    $('#act-hint').textContent = other ? t('act.needKey.' + ACTS[act]) : '';
    $('#act-error').hidden = true;
    $('#act-dialog').showModal();
    $(other ? '#act-key' : '#act-text').focus();
  }
  async function submitAct(ev) {
    ev.preventDefault();
    if (!state.act) return;
    const { w, act } = state.act;
    const err = $('#act-error');
    const text = $('#act-text').value.trim();
    if (act === 'answer' && !text) { err.hidden = false; err.textContent = t('act.needText'); return; }
    const body = act === 'answer' ? { explanation: text } : {};
    if (act !== 'answer' && text) body.note = text;
    const due = $('#act-due').value;
    if (act === 'escalate' && due) body.due_at = (due.length === 16 ? due + ':00' : due) + '+08:00';
    const key = $('#act-key').value.trim() || state.key;
    let r;
    try {
      r = await fetch(`/api/v1/warnings/${encodeURIComponent(w.id)}/${act}`, {
        method: 'POST', cache: 'no-store', body: JSON.stringify(body),
        headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json', Accept: 'application/json' },
      });
    } catch (e) { err.hidden = false; err.textContent = String(e.message || e); return; }
    if (!r.ok) {
      let p = {};
      try { p = await r.json(); } catch (_) { /* not JSON */ }
      err.hidden = false;
      err.textContent = [p.code, p.detail || p.title || 'HTTP ' + r.status].filter(Boolean).join(': ');
      return;
    }
    let out = {};
    try { out = await r.json(); } catch (_) { /* no body */ }
    $('#act-dialog').close();
    state.act = null;
    if (out && out.id === w.id) upsertWarning({ ...w, ...out });
    refreshWarnings();
  }

  // -- anomaly panel: counts by type, the latest, each with its evidence -----------------------

  function shiftDay(day, n) {
    return localDay(new Date(Date.parse(day + 'T12:00:00+08:00') + n * 86400000));
  }
  async function refreshAnomalies() {
    scheduleAnomalies.cancel();
    const day = state.day;
    const to = day || localDay(new Date());
    const from = shiftDay(to, -29);
    try {
      const q = new URLSearchParams({ from, to, limit: '1' });
      const head = await api('/api/v1/anomalies?' + q);
      const total = Number(head.total || 0);
      q.set('limit', '40');
      q.set('offset', String(Math.max(0, total - 40))); // ordered by when they occurred: the latest
      const page = total > 1 ? await api('/api/v1/anomalies?' + q) : head;
      if (day !== state.day) return;
      state.anomalies = { total, counts: F.anomalyCounts(head), list: (page.anomalies || []).slice().reverse(), from, to };
      state.anomaliesMissing = false;
    } catch (e) {
      if (e.status === 404) state.anomaliesMissing = true;
    }
    renderAnomalies();
    scheduleAnomalies(REFRESH_MS);
  }
  function ruleLabel(a) { return label(FLAGS, F.anomalyRule(a)); }
  // Stored texts read "中文 (English)" (flag details): English mode shows the English part.
  function localized(v) {
    if (state.lang !== 'en' || typeof v !== 'string') return v;
    const m = v.match(/\(([^()]*[A-Za-z][^()]*)\)\s*$/);
    return m ? m[1] : v;
  }
  function evidenceLine(e) {
    const skip = new Set(['version', 'step', 'source_event_id', 'occurred_at', 'recorded_at', 'role']);
    const bits = [`#${e.version ?? '?'}`, label(STEPS, e.step)];
    if (e.occurred_at) bits.push(t('ev.occurred', { t: fmtFull(e.occurred_at) }));
    if (e.recorded_at) bits.push(t('ev.recorded', { t: fmtFull(e.recorded_at) }));
    for (const [k, v] of Object.entries(e)) {
      if (skip.has(k) || v === null || v === undefined || typeof v === 'object') continue;
      bits.push(`${k}: ${localized(v)}`);
    }
    return bits.join(' · ');
  }
  function renderAnomalies() {
    const a = state.anomalies;
    $('#anom-sub').textContent = a ? t('anom.sub', { a: a.from, b: a.to, n: num(a.total) }) : '';
    const chips = Object.entries(a ? a.counts : {}).sort((x, y) => y[1] - x[1]).map(([type, n]) => {
      const c = el('span', 'chip t-' + type);
      c.dataset.type = type;
      c.append(el('b', null, label(TYPES, type)), el('span', 'n', num(n)));
      return c;
    });
    $('#anom-counts').replaceChildren(...chips);
    const rows = (a ? a.list : []).map((x) => {
      const id = `${x.case_no}:${F.anomalyRule(x)}`;
      const li = el('li', state.openAnomalies.has(id) ? 'open' : '');
      li.dataset.case = x.case_no;
      li.dataset.rule = F.anomalyRule(x);
      li.dataset.type = F.anomalyType(x);
      li.dataset.status = x.status || '';
      const head = el('div', 'ah');
      head.append(el('span', 'badge anomaly t-' + F.anomalyType(x), label(TYPES, F.anomalyType(x))),
        el('span', 'rule', ruleLabel(x)), el('span', 'case', x.case_no), el('span', 't', fmtTime(F.anomalyWhen(x))));
      if (x.status === 'cleared') head.appendChild(el('span', 'badge flag', label(FLAGS, 'cleared')));
      li.appendChild(head);
      li.appendChild(el('div', 'who', [deptName(x.department), itemName(x.item_code) || x.item_code].filter(Boolean).join(' · ')));
      const ev = el('div', 'evidence');
      ev.hidden = !state.openAnomalies.has(id);
      if (F.anomalyReason(x)) ev.appendChild(el('p', 'reason', F.anomalyReason(x)));
      const ol = el('ol');
      for (const e of F.anomalyEvidence(x)) ol.appendChild(el('li', null, evidenceLine(e)));
      ev.appendChild(ol);
      const go = el('button', 'act', t('anom.open'));
      go.type = 'button';
      go.addEventListener('click', (e) => { e.stopPropagation(); openCase(x.case_no); });
      ev.appendChild(go);
      li.appendChild(ev);
      li.addEventListener('click', () => {
        ev.hidden = !ev.hidden;
        li.classList.toggle('open', !ev.hidden);
        if (ev.hidden) state.openAnomalies.delete(id); else state.openAnomalies.add(id);
      });
      return li;
    });
    $('#anom-list').replaceChildren(...rows);
    const note = $('#anom-note');
    note.hidden = rows.length > 0;
    note.textContent = state.anomaliesMissing ? t('anom.missing') : t('anom.empty');
  }

  // -- live feed -------------------------------------------------------------------------------

  function addFeed(kind, d) {
    const list = $('#feed');
    list.prepend(feedItem(kind, d, 'fresh'));
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
    $('#feed-note').hidden = true;
  }
  function relabelFeed() { // a language switch redraws the lines already shown
    for (const li of [...$('#feed').children]) if (li.feedData) li.replaceWith(feedItem(...li.feedData));
  }
  function feedItem(kind, d, cls) {
    const li = el('li', cls || '');
    li.feedData = [kind, d];
    li.dataset.kind = kind;
    li.dataset.case = d.case_no || '';
    li.dataset.position = d.position;
    const what = el('span', 'what');
    what.append(el('span', 'case', d.case_no || ''), document.createTextNode(' '), el('span', 'dept', deptName(d.department)));
    const item = d.item_code ? `${d.item_code} ${itemName(d.item_code)}`.trim() : '';
    if (item) what.appendChild(el('span', 'item', item));
    let tag;
    if (kind === 'step') {
      li.dataset.step = d.step;
      tag = el('span', `step s-${d.step}`, label(STEPS, d.step));
      li.appendChild(el('span', 't', fmtTime(d.occurred_at, true)));
    } else if (kind === 'warning') {
      tag = el('span', `step s-warning ${d.level || ''}`, d.level ? label(LEVELS, d.level) : t('warning'));
      li.appendChild(el('span', 't', fmtTime(d.issued_at || d.recorded_at, true)));
    } else {
      tag = el('span', 'step s-anomaly', t('anomaly'));
      li.appendChild(el('span', 't', fmtTime(d.detected_at || d.occurred_at, true)));
    }
    li.append(what, tag);
    const flags = (d.flags || []).filter(Boolean);
    if (kind === 'anomaly') {
      flags.push(F.anomalyRule(d));
      if (d.status === 'cleared') flags.push('cleared');
      if (F.anomalyReason(d)) li.title = F.anomalyReason(d);
    }
    if (flags.length) {
      const f = el('span', 'flags');
      for (const code of flags) f.appendChild(el('span', 'badge flag', label(FLAGS, code)));
      li.appendChild(f);
    }
    if (d.case_no) li.addEventListener('click', () => openCase(d.case_no));
    return li;
  }

  // After a reconnect the stream may repeat a few items (it never skips one): show each once.
  const seen = new Set();
  const seenOrder = [];
  function firstTime(type, d) {
    const k = `${type}:${d.position}:${d.anomaly_id || d.id || ''}:${d.status || ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    seenOrder.push(k);
    if (seenOrder.length > 5000) seen.delete(seenOrder.shift());
    return true;
  }

  function onEvent(type, data) {
    if (!firstTime(type, data)) return;
    if (type === 'step') {
      addFeed('step', data);
      scheduleSummary(2000); // the case board view follows the log a moment later
      if (state.openCase && state.openCase === data.case_no) openCase(data.case_no, true);
    } else if (type === 'warning') {
      addFeed('warning', data);
      upsertWarning(data);
      scheduleWarnings(1500); // then the board's own view, which follows the log a moment later
      scheduleSummary(1500); // a deadline passed: the overdue count moved too
    } else if (type === 'anomaly') {
      addFeed('anomaly', data);
      scheduleAnomalies(1500);
    }
  }

  // -- the stream (fetch + SSE parsing, so the key stays in a header) -------------------------

  let streamCtl = null;
  let retryDelay = 1000;
  let watchdog = null;
  function setLive(s) {
    $('#live').dataset.state = s;
    $('#live-text').textContent = t('live.' + s);
  }
  function kick(ctl) {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => ctl.abort(), WATCHDOG_MS);
  }
  async function connect() {
    if (streamCtl) streamCtl.abort();
    const ctl = new AbortController();
    streamCtl = ctl;
    setLive('connecting');
    const headers = { Authorization: 'Bearer ' + state.key, Accept: 'text/event-stream' };
    let url = '/api/v1/monitor/stream';
    if (state.lastId !== null) headers['Last-Event-ID'] = String(state.lastId);
    else url += '?backlog=40'; // a new screen starts with the latest steps
    try {
      const res = await fetch(url, { headers, signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401) { setLive('off'); askKey(t('keydlg.invalid')); return; }
      if (!res.ok || !res.body) throw new HttpError(res.status);
      setLive('live');
      retryDelay = 1000;
      kick(ctl);
      await readEvents(res.body, ctl);
    } catch (_) { /* dropped: reconnect below */ }
    clearTimeout(watchdog);
    if (streamCtl !== ctl) return; // replaced by a newer connection
    setLive('retry');
    setTimeout(() => { if (streamCtl === ctl) connect(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  }
  async function readEvents(body, ctl) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let ev = { type: 'message', data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      kick(ctl);
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          // Dispatch: the id counts even with no data (that is how the server moves us past
          // records this key may not see), as in the EventSource specification.
          if (ev.id !== null && /^\d+$/.test(ev.id)) state.lastId = Number(ev.id);
          if (ev.data.length) {
            try { onEvent(ev.type, JSON.parse(ev.data.join('\n'))); } catch (e) { console.error(e); }
          }
          ev = { type: 'message', data: [], id: null };
          continue;
        }
        if (line[0] === ':') continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'event') ev.type = v;
        else if (field === 'data') ev.data.push(v);
        else if (field === 'id') ev.id = v;
      }
    }
  }

  // -- a case's timeline -------------------------------------------------------------------------

  async function openCase(caseNo, quiet) {
    state.openCase = caseNo;
    const drawer = $('#timeline');
    drawer.hidden = false;
    drawer.dataset.case = caseNo;
    $('#tl-title').textContent = caseNo;
    if (!quiet) {
      $('#tl-facts').replaceChildren();
      $('#tl-events').replaceChildren(el('li', null, t('tl.loading')));
    }
    const path = '/api/v1/cases/' + encodeURIComponent(caseNo);
    let c, ev;
    try {
      [c, ev] = await Promise.all([api(path), api(path + '/events')]);
    } catch (e) {
      if (state.openCase === caseNo) $('#tl-events').replaceChildren(el('li', null, t('tl.error', { e: e.message })));
      return;
    }
    if (state.openCase !== caseNo) return;
    const facts = [];
    const fact = (k, v) => { if (v !== null && v !== undefined && v !== '') facts.push(el('dt', null, t(k)), el('dd', null, v)); };
    fact('tl.item', `${c.item_code} ${itemName(c.item_code)}`.trim());
    fact('tl.dept', deptName(c.department));
    fact('tl.window', c.window);
    fact('tl.status', label(STATUS, c.status) + (c.suspended ? t('suspended') : ''));
    fact('tl.accepted', c.accepted_at ? fmtFull(c.accepted_at) : null);
    fact('tl.promised', c.promised_due_at ? fmtFull(c.promised_due_at) : null);
    fact('tl.legal', c.legal_due_at ? fmtFull(c.legal_due_at) : null);
    fact('tl.concluded', c.concluded_at ? fmtFull(c.concluded_at) : null);
    if (c.on_time !== null && c.on_time !== undefined) fact('tl.ontime', c.on_time ? t('yes') : t('no'));
    const w = activeWarnings().find((x) => x.case_no === caseNo);
    if (w) fact('tl.warn', `${label(LEVELS, w.level)} · ${dueText(w)}`);
    $('#tl-facts').replaceChildren(...facts);
    const rows = ev.events.map((e) => {
      const li = el('li', e.flags && e.flags.length ? 'flagged' : '');
      li.dataset.step = e.step;
      const head = el('div');
      head.append(el('span', 's', label(STEPS, e.step)), el('span', 'at', fmtFull(e.occurred_at)));
      li.appendChild(head);
      const lag = new Date(e.recorded_at) - new Date(e.occurred_at);
      const details = [e.actor && deptName(e.actor.department), e.actor && e.actor.window].filter(Boolean);
      const d = e.data || {};
      if (d.result) details.push(`${t('tl.result')}: ${label(RESULTS, d.result)}`);
      if (d.granted === true) details.push(t('tl.granted'));
      if (d.granted === false) details.push(t('tl.denied'));
      if (d.procedure) details.push(`${t('tl.procedure')}: ${label(PROCEDURES, d.procedure)}`);
      if (d.score) details.push(`${t('tl.score')}: ${d.score}`);
      if (d.amount) details.push(t('tl.amount', { n: d.amount }));
      if (e.step === 'extended' && d.value) details.push(t('tl.extended', { n: d.value + label(UNITS, d.unit) }));
      if (lag > 3600000) details.push(t('tl.recorded', { t: fmtFull(e.recorded_at) }));
      li.appendChild(el('div', 'd', details.join(' · ')));
      if (e.flags && e.flags.length) li.appendChild(el('div', 'fl', e.flags.map((f) => label(FLAGS, f.code)).join('、')));
      li.appendChild(el('div', 'h', `#${e.version} ${String(e.hash).slice(0, 16)}…`));
      return li;
    });
    $('#tl-events').replaceChildren(...rows);
  }
  window.esupOpenCase = (caseNo) => openCase(caseNo); // the audit panel (audits.js) opens a drawn case's timeline
  function closeCase() {
    state.openCase = null;
    $('#timeline').hidden = true;
  }

  // -- key, language, big screen, clock ----------------------------------------------------------

  function askKey(message) {
    const dlg = $('#key-dialog');
    const err = $('#key-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('#key-input').value = '';
    if (!dlg.open) dlg.showModal();
    $('#key-input').focus();
  }
  async function saveKey(ev) {
    ev.preventDefault();
    const key = $('#key-input').value.trim();
    const err = $('#key-error');
    if (!key) { err.hidden = false; err.textContent = t('keydlg.empty'); return; }
    const r = await fetch('/api/v1/monitor/summary?days=1', { headers: { Authorization: 'Bearer ' + key }, cache: 'no-store' });
    if (r.status === 401) { err.hidden = false; err.textContent = t('keydlg.invalid'); return; }
    state.key = key;
    localStorage.setItem(STORE.key, key);
    $('#key-dialog').close();
    state.lastId = null;
    start();
  }
  function applyLang() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    $('#lang').textContent = t('lang');
    document.title = t('title');
    setLive($('#live').dataset.state || 'off');
    renderSummary();
    renderWarnings();
    renderAnomalies();
    relabelFeed();
    showCenter();
    if (state.openCase) openCase(state.openCase, true);
  }
  function tick() {
    const p = parts(new Date());
    $('#clock').textContent = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  }

  // -- alarms: what the operator must act on (a view stopped, next year's calendar missing) -----

  async function refreshHealth() {
    let h;
    try {
      const r = await fetch('/healthz', { cache: 'no-store', headers: { Accept: 'application/json' } });
      h = await r.json();
    } catch (_) { return; }
    const lines = [];
    for (const a of h.alarms || []) {
      lines.push(state.lang === 'zh' ? a.detail
        : `View ${a.view} cannot apply the event at log position ${a.position} and has stopped there (the others go on): see esup views`);
    }
    const cal = h.calendar || {};
    if (cal.status && cal.status !== 'ok') {
      const years = (cal.missing_years || []).join(', ');
      lines.push(state.lang === 'zh' ? (cal.message || `${years}年工作日历尚未发布`)
        : `The ${years} working calendar is not published: deadlines in it are provisional until PUT /api/v1/calendar/${years.split(', ')[0]}`);
    }
    const box = $('#alarms');
    box.textContent = '';
    for (const line of lines) box.appendChild(el('div', 'alarm', '⚠ ' + line));
    box.hidden = lines.length === 0;
  }

  function start() {
    if (!state.started) {
      state.started = true;
      setInterval(renderWarnings, 60000); // "x minutes overdue" moves on by itself
      setInterval(refreshHealth, 30000);
    }
    refreshHealth();
    refreshWarnings();
    refreshSummary();
    refreshAnomalies();
    // Names first, so the feed's first lines already say which department and item.
    loadNames().finally(() => { renderSummary(); renderWarnings(); connect(); });
  }

  function init() {
    const params = new URLSearchParams(location.search);
    if (params.get('screen') === '1' || localStorage.getItem(STORE.big) === '1') document.body.classList.add('big');
    if (params.get('lang') === 'en' || params.get('lang') === 'zh') state.lang = params.get('lang');
    applyLang();
    tick();
    setInterval(tick, 1000);
    $('#key-form').addEventListener('submit', saveKey);
    $('#key-forget').addEventListener('click', () => {
      localStorage.removeItem(STORE.key);
      state.key = '';
      if (streamCtl) { const c = streamCtl; streamCtl = null; c.abort(); }
      setLive('off');
      askKey();
    });
    $('#keybtn').addEventListener('click', () => askKey());
    $('#lang').addEventListener('click', () => {
      state.lang = state.lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem(STORE.lang, state.lang);
      applyLang();
      refreshHealth();
    });
    $('#screen').addEventListener('click', () => {
      const on = document.body.classList.toggle('big');
      localStorage.setItem(STORE.big, on ? '1' : '0');
      if (on && document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
      if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
    });
    $('#day').addEventListener('change', (e) => {
      const v = e.target.value;
      state.day = v && state.summary && v !== state.summary.today ? v : null;
      refreshDay();
    });
    $('#latest').addEventListener('click', (e) => {
      state.day = e.target.dataset.day;
      $('#day').value = state.day;
      refreshDay();
    });
    $('#act-form').addEventListener('submit', submitAct);
    $('#act-cancel').addEventListener('click', () => $('#act-dialog').close());
    $('#tl-close').addEventListener('click', closeCase);
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeCase(); });
    if (state.key) start();
    else askKey();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
