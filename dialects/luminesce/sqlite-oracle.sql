-- Luminesce SQL against SQLite itself: each query runs through polyquery's Luminesce path and
-- through SQLite over the same rows of Testing1K ([Int], Str, Dbl, Date, Bool); the column names
-- and values must be the same. A line "sqlite: <sql>" after a query is SQLite's own spelling of it.
-- Run by src/dialect/luminesce/oracle.rs (cargo test --lib oracle).

-- plain columns, brackets, case-insensitive names
select [Int], Str, Dbl from Testing1K where [Int] <= 5 order by [Int]
select [int], str, DBL from testing1k where [Int] between 10 and 12 order by [Int]
select t.[Int], t.Str from Testing1K t where t.[Int] < 3 order by 1
select Date, Bool from Testing1K where [Int] in (1, 2, 24, 25) order by [Int]
select distinct Bool from Testing1K order by Bool
select count(*) from Testing1K
select count(*) as n, sum([Int]) as s from Testing1K where Bool
select [Int] as i from Testing1K where [Int] % 100 = 0 order by i desc
select [Int] from Testing1K where Str = 'Str42'
select [Int] from Testing1K where [Int] < 10 and not Bool order by [Int]

-- result column names as written
select length(Str) from Testing1K where [Int] <= 3 order by [Int]
select substr(Str,1,2) from Testing1K where [Int] = 1
select substr(Str, 2) from Testing1K where [Int] = 7
select [Int]+1 from Testing1K where [Int] = 1
select [Int] + 1, [Int]*2 from Testing1K where [Int] = 2
select upper(Str), lower(Str) from Testing1K where [Int] = 3
select 1
select 'a'
select 1.5
select null
select 1 + 2 * 3
select 7 / 2, 7 % 3, 7.0 / 2, -7 / 2
select count(*), max([Int]), min(Str) from Testing1K
select count( * ) from Testing1K where [Int] < 5
select abs(-3), abs(-2.5)
select coalesce(null, 2), coalesce(null, null, 'x')
select nullif(1, 1), nullif(1, 2)
select case when [Int] > 2 then 'big' else 'small' end from Testing1K where [Int] <= 4 order by [Int]
select case [Int] when 1 then 'one' when 2 then 'two' end from Testing1K where [Int] <= 3 order by [Int]
select [Int] is null, Str is not null from Testing1K where [Int] = 1
select Str || '!' from Testing1K where [Int] = 5
select (select max([Int]) from Testing1K)
select x from (select [Int] * 10 as x from Testing1K where [Int] < 4) order by x
select * from (select length(Str) from Testing1K where [Int] = 100)

-- iif, ifnull, nullif, coalesce
select iif([Int] > 500, 'high', 'low') as band, count(*) from Testing1K group by band order by band
select iif(Bool, [Int], -[Int]) from Testing1K where [Int] <= 4 order by [Int]
select iif(1, 'y', 'n'), iif(0, 'y', 'n'), iif(null, 'y', 'n')
select ifnull(null, 5), ifnull(3, 5), ifnull(null, null)
select ifnull(nullif(Str, 'Str1'), 'none') from Testing1K where [Int] <= 2 order by [Int]

-- substr
select substr('hello', 2, 3), substr('hello', -3), substr('hello', -3, 2)
select substr('hello', 0, 2), substr('hello', 0), substr('hello', 2, -1)
select substr('hello', -10, 3), substr('hello', 10), substr('hello', 3, 0)
select substr('hello', 5, -3), substr('hello', -1, -2), substr(null, 1)
select substr(12345, 2, 2), substr(1.5, 1, 2)
select substr(Str, -2) from Testing1K where [Int] in (9, 99, 999) order by [Int]
select substring('polyquery', 5, 5)

-- instr, length, replace, trims, case
select instr('hello', 'l'), instr('hello', 'z'), instr('hello', ''), instr(null, 'a')
select instr(Str, '9') from Testing1K where [Int] in (9, 19, 90, 100) order by [Int]
select instr(12345, 34)
select length('hello'), length(''), length(null), length(12345), length(1.0), length(0.25)
select length(Dbl) from Testing1K where [Int] <= 8 order by [Int]
select replace('banana', 'a', 'o'), replace('banana', 'an', ''), replace('abc', '', 'z')
select replace(Str, 'Str', 'S-') from Testing1K where [Int] = 11
select trim('  a b  '), ltrim('  a  '), rtrim('  a  ')
select trim('xxaxx', 'x'), ltrim('xxaxx', 'x'), rtrim('xxaxx', 'x')
select ltrim(Str, 'St') from Testing1K where [Int] = 12
select upper('abc'), lower('ABC'), upper(null)

-- hex, typeof, quote, char, unicode
select hex('abc'), hex(12), hex(''), hex(null)
select hex(Str) from Testing1K where [Int] = 1
select typeof(1), typeof(1.5), typeof('a'), typeof(null)
select typeof([Int]), typeof(Dbl), typeof(Str), typeof(Date), typeof(Bool) from Testing1K where [Int] = 1
select typeof(1 + 1), typeof(1 + 1.0), typeof(7 / 2), typeof(count(*)) from Testing1K
select quote('it''s'), quote(12), quote(null), quote(2.5)
select char(72, 105), unicode('A'), unicode(''), unicode(null)

-- round
select round(2.5), round(-2.5), round(2.4), round(0.5)
select round(2.675, 2), round(1.005, 2), round(3.14159, 3), round(-1.2345, 1)
select round(12345.6789, -1), round(null), round(5), typeof(round(5))
select round(Dbl) from Testing1K where [Int] <= 6 order by [Int]
select round(Dbl, 1) from Testing1K where [Int] in (1, 3, 5, 7) order by [Int]
select round([Int] / 3.0, 2) from Testing1K where [Int] <= 5 order by [Int]

-- printf and format
select printf('%d', 42), printf('%5d|', 42), printf('%-5d|', 42), printf('%05d', 42)
select printf('%.2f', 3.14159), printf('%8.3f|', 2.5), printf('%f', 1.0)
select printf('%s and %s', 'this', 'that'), printf('%10s|', 'right'), printf('%-10s|', 'left')
select printf('%x %X %o', 255, 255, 8), printf('%#x', 255)
select printf('%e', 12345.678), printf('%g', 0.0001234), printf('%g', 1234567.0), printf('%g', 100.0)
select printf('%,d', 1234567), printf('%+d %+d', 5, -5), printf('%%'), printf('%c', 'xyz')
select printf('%q', 'it''s'), printf('%Q', 'it''s'), printf('%Q', null), printf('%.3s', 'abcdef')
select printf('%s', null), printf('%d', null), printf('%d', '12abc'), printf('%d', 3.9)
select printf('%s-%03d', Str, [Int]) from Testing1K where [Int] in (1, 22, 333) order by [Int]
select format('%s=%d', 'n', 7), printf(null), printf('plain')
select printf('%.1f%%', Dbl * 10) from Testing1K where [Int] = 3

-- date and time
select date('2020-03-15'), time('2020-03-15 10:20:30'), datetime('2020-03-15 10:20:30')
select date('2020-03-15 10:20:30', '+1 day'), date('2020-01-31', '+1 month'), date('2020-02-29', '+1 year')
select datetime('2020-03-15 10:20:30', '-90 minutes'), datetime('2020-03-15', '+36 hours'), datetime('2020-03-15', '+30 seconds')
select date('2020-03-15', 'start of month'), date('2020-03-15', 'start of year'), datetime('2020-03-15 10:20:30', 'start of day')
select date('2020-03-15', 'weekday 0'), date('2020-03-15', 'weekday 1'), date('2020-03-15', 'start of month', '+1 month', '-1 day')
select julianday('2000-01-01'), julianday('2020-03-15 12:00:00'), julianday('2000-01-01 06:00:00')
select datetime(2451545.0), date(2459000), datetime(0, 'unixepoch'), datetime(1600000000, 'unixepoch')
select unixepoch('2020-03-15 10:20:30'), unixepoch('1970-01-02')
select strftime('%Y-%m-%d', '2020-03-15'), strftime('%H:%M:%S', '2020-03-15 10:20:30'), strftime('%j', '2020-12-31')
select strftime('%w %u', '2020-03-15'), strftime('%W', '2020-03-15'), strftime('%s', '2020-03-15')
select strftime('%f', '2020-03-15 10:20:30.125'), strftime('%Y%m%d%H%M', '2020-03-15 10:20'), strftime('%%')
select date('2020-03-15T10:20:30'), datetime('2020-03-15 10:20:30Z'), time('10:20')
select date('not a date'), date(null), datetime('2020-13-01'), strftime('%Y', null)
select strftime('%Y', Date), strftime('%m-%d %H', Date) from Testing1K where [Int] in (1, 30, 900) order by [Int]
select date(Date), time(Date), datetime(Date) from Testing1K where [Int] in (5, 50) order by [Int]
select date(Date, '+1 month') from Testing1K where [Int] = 700
select julianday(Date) - julianday('2000-01-01') from Testing1K where [Int] = 48
select strftime('%Y-%m', Date) as month, count(*) from Testing1K group by month order by month
select count(*) from Testing1K where Date < '2000-01-02'
select count(*) from Testing1K where date(Date) = '2000-01-03'
select min(Date), max(Date) from Testing1K

-- date literals
select count(*) from Testing1K where Date < #2000-01-02#
  sqlite: select count(*) from Testing1K where Date < '2000-01-02 00:00:00'
select [Int] from Testing1K where Date = #2000-01-01 05:00:00#
  sqlite: select [Int] from Testing1K where Date = '2000-01-01 05:00:00'
select count(*) from Testing1K where Date between #2000-01-02# and #2000-01-03#
  sqlite: select count(*) from Testing1K where Date between '2000-01-02 00:00:00' and '2000-01-03 00:00:00'

-- aggregates: total, group_concat, avg, sum, min, max
select total([Int]) from Testing1K
select total(Dbl), sum(Dbl), avg(Dbl) from Testing1K
select total([Int]) from Testing1K where [Int] < 0
select sum([Int]) from Testing1K where [Int] < 0
select typeof(total([Int])), typeof(sum([Int])), typeof(avg([Int])) from Testing1K
select group_concat(Str) from Testing1K where [Int] <= 5
select group_concat([Int], '-') from Testing1K where [Int] <= 5
select group_concat(Dbl, ';') from Testing1K where [Int] <= 4
select Bool, group_concat([Int]) from Testing1K where [Int] <= 6 group by Bool order by Bool
select Bool, count(*), sum([Int]), avg(Dbl), min(Str), max(Str) from Testing1K group by Bool order by Bool
select [Int] % 3 as r, count(*) from Testing1K group by r order by r
select [Int] % 3, count(*) from Testing1K group by [Int] % 3 order by 1
select count(distinct [Int] % 7) from Testing1K
select count(Str), count(null) from Testing1K
select avg([Int]) from Testing1K where [Int] <= 4
select max(length(Str)) from Testing1K
select Bool, total(Dbl) from Testing1K group by Bool having total(Dbl) > 60000 order by Bool
select substr(Str, 1, 4) as p, count(*) as n from Testing1K group by p order by n desc, p limit 3

-- bare columns in grouped queries take the group's last row, as in SQLite
select Bool, Str, count(*) from Testing1K where [Int] <= 6 group by Bool order by Bool
select Bool, [Int] as i, Str || '!' as s from Testing1K where [Int] <= 6 group by Bool order by Bool
select [Int] % 3 as r, coalesce(Str, 'none') as s, max(Dbl) from Testing1K where [Int] <= 9 group by r order by r
select Bool, t.Str from Testing1K t where [Int] <= 4 group by 1 order by 1
@x = select Bool, Str from Testing1K where [Int] <= 8 group by Bool; select * from @x order by Bool
  sqlite: with x as (select Bool, Str from Testing1K where [Int] <= 8 group by Bool) select * from x order by Bool

-- scalar min and max
select max(1, 2, 3), min(1, 2, 3), max('a', 'b')
select max(1, null), min(null, 2)
select max([Int], 500) from Testing1K where [Int] in (1, 999) order by [Int]

-- LIKE ignores case as in SQLite; comparisons
select count(*) from Testing1K where Str like 'str1%'
select count(*) from Testing1K where Str like 'STR_'
select count(*) from Testing1K where Str not like '%0'
select 'abc' like 'ABC', 'abc' like 'a%', 'abc' like '_b_'
select count(*) from Testing1K where [Int] in (select [Int] * 2 from Testing1K where [Int] < 10)
select count(*) from Testing1K where exists (select 1 from Testing1K t where t.[Int] = 5)
select [Int] from Testing1K where Str >= 'Str998' order by Str
select [Int] from Testing1K where Dbl = 2.5
select [Int] from Testing1K where [Int] between 3 and 5 and Dbl > 1 order by [Int] desc

-- || concatenation keeps SQLite's text of numbers
select 'n=' || 1, 'r=' || 1.0, 'x' || 0.25, 1 || 2
select Str || ':' || [Int] || ':' || Dbl from Testing1K where [Int] in (4, 6) order by [Int]
select 'a' || null

-- ordering, limits, set operations
select [Int] from Testing1K order by [Int] desc limit 3
select [Int] from Testing1K order by [Int] limit 3 offset 10
select Str from Testing1K order by length(Str) desc, Str limit 2
select [Int] from Testing1K where [Int] < 3 union select [Int] from Testing1K where [Int] between 2 and 4 order by 1
select [Int] from Testing1K where [Int] < 3 union all select [Int] from Testing1K where [Int] < 3 order by 1
select [Int] from Testing1K where [Int] < 5 except select [Int] from Testing1K where [Int] = 2 order by 1
select [Int] from Testing1K where [Int] < 5 intersect select [Int] from Testing1K where [Int] > 2 order by 1

-- joins
select a.[Int], b.Str from Testing1K a join Testing1K b on b.[Int] = a.[Int] * 2 where a.[Int] <= 3 order by a.[Int]
select a.[Int], b.[Int] from Testing1K a left join Testing1K b on b.[Int] = a.[Int] + 998 where a.[Int] <= 3 order by a.[Int]
select count(*) from Testing1K a, Testing1K b where a.[Int] < 10 and b.[Int] < 10 and a.[Int] < b.[Int]

-- common table expressions and window functions
with t as (select [Int] as i from Testing1K where [Int] <= 5) select sum(i) from t
with t as (select [Int], Str from Testing1K where [Int] < 4) select * from t order by [Int]
select [Int], row_number() over (order by [Int] desc) from Testing1K where [Int] <= 3 order by [Int]
select [Int], sum([Int]) over (order by [Int]) as running from Testing1K where [Int] <= 5 order by [Int]
select Bool, [Int], rank() over (partition by Bool order by [Int]) as r from Testing1K where [Int] <= 6 order by [Int]
-- the frames lumipy writes in every window: EXCLUDE NO OTHERS is the default
select [Int], row_number() over (partition by Bool order by [Int] asc rows between unbounded preceding and current row exclude no others) as r from Testing1K where [Int] < 7 order by [Int]
select [Int], sum([Int]) over (order by [Int] asc rows between unbounded preceding and current row exclude no others) as c from Testing1K where [Int] < 6 order by [Int]
select [Int], avg(Dbl) over (order by [Int] rows between 1 preceding and 1 following exclude no others) as m from Testing1K where [Int] < 6 order by [Int]
select [Int], sum([Int]) over (order by [Int] rows between 2 preceding and current row exclude no others) from Testing1K where [Int] < 5 order by [Int]

-- table variables and scalar variables
@x = select [Int], Str from Testing1K where [Int] < 4; select * from @x
  sqlite: with x as (select [Int], Str from Testing1K where [Int] < 4) select * from x
@@n = select 3; select [Int] from Testing1K where [Int] <= @@n
  sqlite: select [Int] from Testing1K where [Int] <= (select 3)
@x = select [Int] as i, length(Str) from Testing1K where [Int] in (1, 10, 100); select * from @x order by i
  sqlite: with x as (select [Int] as i, length(Str) from Testing1K where [Int] in (1, 10, 100)) select * from x order by i
@a = select [Int] from Testing1K where [Int] <= 10; @b = select [Int] from @a where [Int] % 2 = 0; select count(*), sum([Int]) from @b
  sqlite: with a as (select [Int] from Testing1K where [Int] <= 10), b as (select [Int] from a where [Int] % 2 = 0) select count(*), sum([Int]) from b
@@lo = select 5; @@hi = select @@lo * 2; select [Int] from Testing1K where [Int] between @@lo and @@hi order by [Int]
  sqlite: select [Int] from Testing1K where [Int] between (select 5) and (select (select 5) * 2) order by [Int]
@t = select [Int] from Testing1K where [Int] <= 20; @@m = select max([Int]) from @t; select [Int] from @t where [Int] > @@m - 3 order by [Int]
  sqlite: with t as (select [Int] from Testing1K where [Int] <= 20) select [Int] from t where [Int] > (select max([Int]) from t) - 3 order by [Int]
@x = select Str from Testing1K where [Int] = 7; @y = select Str from Testing1K where [Int] = 8; select * from @x union all select * from @y order by Str
  sqlite: with x as (select Str from Testing1K where [Int] = 7), y as (select Str from Testing1K where [Int] = 8) select * from x union all select * from y order by Str
@x = select [Int] from Testing1K where [Int] < 3; select a.[Int], b.[Int] from @x a join @x b on a.[Int] <= b.[Int] order by 1, 2
  sqlite: with x as (select [Int] from Testing1K where [Int] < 3) select a.[Int], b.[Int] from x a join x b on a.[Int] <= b.[Int] order by 1, 2
@X = select 1 as one; select * from @x
  sqlite: with x as (select 1 as one) select * from x
@x = select [Int] from Testing1K where [Int] < 3; with y as (select [Int] * 2 as d from @x) select d from y order by d
  sqlite: with x as (select [Int] from Testing1K where [Int] < 3), y as (select [Int] * 2 as d from x) select d from y order by d
@@name = select 'Str5'; select [Int] from Testing1K where Str = @@name
  sqlite: select [Int] from Testing1K where Str = (select 'Str5')
@x = select [Int] % 4 as k, count(*) as n from Testing1K group by k; select k, n from @x where n > 249 order by k
  sqlite: with x as (select [Int] % 4 as k, count(*) as n from Testing1K group by k) select k, n from x where n > 249 order by k
@x = select [Int] from Testing1K where [Int] < 5;  select group_concat([Int]) from @x;
  sqlite: with x as (select [Int] from Testing1K where [Int] < 5) select group_concat([Int]) from x

-- more expressions
select -[Int], +[Int], ~[Int] from Testing1K where [Int] = 5
select [Int] & 3, [Int] | 8 from Testing1K where [Int] = 5
select 10 - 2 - 3, 2 * 3 + 4, (2 + 3) * 4, 2 - -2
select 1 / 0, 1.0 / 0, 5 % 0, 0 / 0
select [Int] / ([Int] - 1), [Int] % ([Int] - 1) from Testing1K where [Int] <= 3 order by [Int]
select 1 = 1, 1 <> 2, 1 < 2, 2 <= 2, 'a' < 'b'
select [Int] from Testing1K where [Int] in (3, 1, 2) order by [Int] desc
select [Int] from Testing1K where Str in ('Str10', 'Str20') order by [Int]
select count(*) from Testing1K where [Int] not in (1, 2, 3)
select cast([Int] as text) || 'x' from Testing1K where [Int] = 9
select cast('12' as integer) + 1, cast(3.7 as integer), cast(5 as real)
select cast(Dbl * 4 as integer) from Testing1K where [Int] = 13
select typeof(cast([Int] as real)) from Testing1K where [Int] = 1
select coalesce(nullif([Int] % 5, 0), -1) from Testing1K where [Int] in (4, 5, 6) order by [Int]
select lower(Str) = 'str1' from Testing1K where [Int] = 1
select [Int] from Testing1K where Bool and [Int] < 7 order by [Int]
select sum(case when Bool then 1 else 0 end) from Testing1K
select count(*) filter (where Bool) from Testing1K
select count(*) from Testing1K where Dbl > 100.5 and Dbl < 101
select max(Dbl) - min(Dbl) from Testing1K
select length(hex(Str)) from Testing1K where [Int] = 1000
select printf('%s', [Int] * 1.5) from Testing1K where [Int] in (1, 2) order by [Int]
select instr(lower(Str), 'r1') from Testing1K where [Int] in (1, 21) order by [Int]
select substr(Str, instr(Str, 'r') + 1) from Testing1K where [Int] = 321
select replace(substr(Str, 4), '0', 'o') from Testing1K where [Int] = 100
select upper(substr(Str, 1, 1)) || lower(substr(Str, 2)) from Testing1K where [Int] = 2
select date('2000-01-01', '+' || [Int] || ' days') from Testing1K where [Int] in (1, 59, 366) order by [Int]
select iif(length(Str) > 5, substr(Str, 1, 5) || '...', Str) from Testing1K where [Int] in (5, 50000, 123) order by [Int]
select total(length(Str)) from Testing1K where [Int] <= 100
select group_concat(distinct Bool) from Testing1K
select count(*) from [Testing1K]
