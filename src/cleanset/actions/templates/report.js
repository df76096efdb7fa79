(function(){
  // Every cell is written with textContent: the data came from outside (keys, URLs, captions, reasons).
  function text(v){
    if (v === null || v === undefined) return '';
    return Array.isArray(v) ? v.join('; ') : String(v);
  }
  function setup(box){
    var id = box.getAttribute('data-table');
    var size = parseInt(box.getAttribute('data-page-size'), 10);
    var rows = JSON.parse(document.getElementById(id + '-data').textContent);
    var cols = Array.prototype.map.call(document.querySelectorAll('#' + id + ' thead th'), function(th){
      return {col: th.getAttribute('data-col'), sub: th.getAttribute('data-sub'), cls: th.className,
              mark: th.hasAttribute('data-mark'), title: th.getAttribute('data-title')};
    });
    var fields = [];
    cols.forEach(function(c){ fields.push(c.col); if (c.sub) fields.push(c.sub); if (c.title) fields.push(c.title); });
    var page = 0, shown = rows;
    var body = document.querySelector('#' + id + ' tbody');
    var q = document.getElementById(id + '-search');
    var info = document.getElementById(id + '-info');
    var total = document.getElementById(id + '-total');
    total.textContent = rows.length.toLocaleString('en-US');
    total.setAttribute('data-count', String(rows.length));
    function render(){
      var pages = Math.max(1, Math.ceil(shown.length / size));
      if (page >= pages) page = pages - 1;
      while (body.firstChild) body.removeChild(body.firstChild);
      shown.slice(page * size, page * size + size).forEach(function(r){
        var tr = document.createElement('tr');
        cols.forEach(function(c){
          var td = document.createElement('td');
          td.textContent = text(r[c.col]);
          if (c.cls) td.className = c.cls;
          if (c.mark) td.setAttribute('data-v', text(r[c.col]));
          if (c.title && text(r[c.title])) td.title = text(r[c.title]);
          if (c.sub && text(r[c.sub]) && text(r[c.sub]) !== text(r[c.col])) {
            var s = document.createElement('span');
            s.className = 'sub';
            s.textContent = text(r[c.sub]);
            td.appendChild(s);
          }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      info.textContent = shown.length ? ('rows ' + (page * size + 1) + '\u2013' +
        Math.min(shown.length, page * size + size) + ' of ' + shown.length + ', page ' + (page + 1) + '/' + pages)
        : 'no rows';
      info.setAttribute('data-matching', String(shown.length));
    }
    function filter(){
      var s = q.value.toLowerCase();
      shown = !s ? rows : rows.filter(function(r){
        return fields.some(function(f){ return text(r[f]).toLowerCase().indexOf(s) >= 0; });
      });
      page = 0; render();
    }
    q.addEventListener('input', filter);
    // report.html#q=TEXT opens with the flagged table filtered, so a link can point at one list's hits.
    if (box.hasAttribute('data-hash-filter') && location.hash.indexOf('#q=') === 0) {
      q.value = decodeURIComponent(location.hash.slice(3));
    }
    document.getElementById(id + '-prev').addEventListener('click', function(){ if (page > 0) { page--; render(); } });
    document.getElementById(id + '-next').addEventListener('click', function(){
      if ((page + 1) * size < shown.length) { page++; render(); } });
    filter();
  }
  Array.prototype.forEach.call(document.querySelectorAll('.datatable'), setup);
})();
