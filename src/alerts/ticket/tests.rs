use super::*;
use unicode_width::UnicodeWidthStr;

const URL: &str = "https://pair.example.com/fix?store=main-st-burger-co&platform=uber-eats&token=8f3a9c2e1b7d4f60a5c3";
const WIDTHS: [Width; 2] = [Width::Cols42, Width::Cols32];

/// (language, title, labels [platform, store, problem], values, steps, caption)
type Fixture = (
    &'static str,
    &'static str,
    [&'static str; 3],
    [&'static str; 3],
    &'static [&'static str],
    &'static str,
);

const FIXTURES: &[Fixture] = &[
    (
        "en",
        "STORE CONNECTION ALERT",
        ["Platform", "Store", "Problem"],
        ["Uber Eats", "Main St (Burger Co)", "Uber Eats did not accept the password, so new orders are not reaching this tablet."],
        &["Open the Uber Eats Manager app on the store tablet and sign in again.", "If the password was changed recently, enter the new password in the pairing settings.", "Print a test order to confirm that orders arrive again."],
        "Scan to fix the connection",
    ),
    (
        "fr",
        "ALERTE DE CONNEXION DU MAGASIN",
        ["Plateforme", "Magasin", "Problème"],
        ["Uber Eats", "Rue Principale (Burger Co)", "Uber Eats n'a pas accepté le mot de passe : les nouvelles commandes n'arrivent plus sur cette tablette."],
        &["Ouvrez l'application Uber Eats Manager sur la tablette et reconnectez-vous.", "Si le mot de passe a été modifié récemment, saisissez le nouveau mot de passe dans les réglages."],
        "Scannez pour rétablir la connexion",
    ),
    (
        "es",
        "ALERTA DE CONEXIÓN DE LA TIENDA",
        ["Plataforma", "Tienda", "Problema"],
        ["Uber Eats", "Calle Mayor (Burger Co)", "Uber Eats no aceptó la contraseña y los pedidos nuevos no llegan a esta tableta."],
        &["Abra la aplicación Uber Eats Manager en la tableta e inicie sesión de nuevo.", "¿Cambió la contraseña hace poco? Escriba la nueva en los ajustes de conexión."],
        "Escanee para reparar la conexión",
    ),
    (
        "pt-BR",
        "ALERTA DE CONEXÃO DA LOJA",
        ["Plataforma", "Loja", "Problema"],
        ["iFood", "Rua Principal (Burger Co)", "O iFood não aceitou a senha e os novos pedidos não estão chegando a este tablet."],
        &["Abra o aplicativo Gestor de Pedidos no tablet da loja e entre novamente.", "Se a senha foi alterada, digite a nova senha nas configurações de conexão."],
        "Leia o código para corrigir a conexão",
    ),
    (
        "de",
        "VERBINDUNGSWARNUNG FÜR DIE FILIALE",
        ["Plattform", "Filiale", "Problem"],
        ["Lieferando", "Hauptstraße (Burger Co)", "Lieferando hat das Passwort nicht akzeptiert, daher kommen keine neuen Bestellungen auf diesem Tablet an."],
        &["Öffnen Sie die Lieferando-App auf dem Tablet und melden Sie sich erneut an.", "Wurde das Passwort kürzlich geändert, geben Sie das neue Passwort in den Kopplungseinstellungen ein."],
        "Scannen, um die Verbindung zu reparieren",
    ),
    (
        "nl",
        "WAARSCHUWING: WINKELVERBINDING",
        ["Platform", "Winkel", "Probleem"],
        ["Thuisbezorgd.nl", "Hoofdstraat (Burger Co)", "Thuisbezorgd.nl heeft het wachtwoord niet geaccepteerd, dus nieuwe bestellingen komen niet binnen."],
        &["Open de app op de tablet van de winkel en log opnieuw in.", "Is het wachtwoord onlangs gewijzigd? Vul dan het nieuwe wachtwoord in bij de koppelingsinstellingen."],
        "Scan om de verbinding te herstellen",
    ),
    (
        "it",
        "AVVISO DI CONNESSIONE DEL NEGOZIO",
        ["Piattaforma", "Negozio", "Problema"],
        ["Deliveroo", "Via Roma (Burger Co)", "Deliveroo non ha accettato la password, quindi i nuovi ordini non arrivano più a questo tablet."],
        &["Apri l'app Deliveroo sul tablet del negozio e accedi di nuovo.", "Se la password è stata cambiata di recente, inserisci quella nuova nelle impostazioni."],
        "Scansiona per ripristinare la connessione",
    ),
    (
        "pl",
        "ALERT POŁĄCZENIA SKLEPU",
        ["Platforma", "Sklep", "Problem"],
        ["Pyszne.pl", "ul. Główna (Burger Co)", "Pyszne.pl nie zaakceptowało hasła, więc nowe zamówienia nie docierają do tego tabletu."],
        &["Otwórz aplikację na tablecie w sklepie i zaloguj się ponownie.", "Jeśli hasło zostało niedawno zmienione, wpisz nowe hasło w ustawieniach połączenia."],
        "Zeskanuj, aby naprawić połączenie",
    ),
    (
        "ko",
        "매장 연결 알림",
        ["플랫폼", "매장", "문제"],
        ["배달의민족", "메인 스트리트점 (버거 컴퍼니)", "배민에서 비밀번호를 받아들이지 않았어요. 새 주문이 이 태블릿으로 들어오지 않습니다."],
        &["매장 태블릿에서 배민 사장님 앱을 열고 다시 로그인하세요.", "최근에 비밀번호를 바꿨다면 연결 설정에 새 비밀번호를 입력하세요."],
        "QR 코드를 스캔해 연결을 복구하세요",
    ),
    (
        "ja",
        "店舗接続アラート",
        ["プラットフォーム", "店舗", "問題"],
        ["出前館", "メイン通り店（バーガー社）", "出前館がパスワードを受け付けませんでした。新しい注文がこのタブレットに届いていません。"],
        &["店舗のタブレットで管理アプリを開き、もう一度ログインしてください。", "最近パスワードを変更した場合は、接続設定に新しいパスワードを入力してください。"],
        "読み取って接続を修復",
    ),
    (
        "zh",
        "门店连接警报",
        ["平台", "门店", "问题"],
        ["美团外卖", "主街店（汉堡公司）", "美团外卖没有接受密码，新订单无法到达这台平板电脑。"],
        &["在门店平板电脑上打开商家版应用并重新登录。", "如果最近修改过密码，请在连接设置中输入新密码。"],
        "扫码修复连接",
    ),
    (
        "th",
        "แจ้งเตือนการเชื่อมต่อร้านค้า",
        ["แพลตฟอร์ม", "ร้าน", "ปัญหา"],
        ["GrabFood", "สาขาถนนหลัก (Burger Co)", "GrabFood ไม่ยอมรับรหัสผ่าน ทำให้คำสั่งซื้อใหม่ไม่เข้ามาที่แท็บเล็ตเครื่องนี้"],
        &["เปิดแอป GrabMerchant บนแท็บเล็ตของร้านแล้วเข้าสู่ระบบอีกครั้ง", "หากเพิ่งเปลี่ยนรหัสผ่าน ให้ใส่รหัสผ่านใหม่ในการตั้งค่าการเชื่อมต่อ"],
        "สแกนเพื่อแก้ไขการเชื่อมต่อ",
    ),
    (
        "ar",
        "تنبيه اتصال المتجر",
        ["المنصة", "المتجر", "المشكلة"],
        ["Talabat", "الشارع الرئيسي (Burger Co)", "لم تقبل منصة طلبات كلمة المرور، لذلك لا تصل الطلبات الجديدة إلى هذا الجهاز اللوحي."],
        &["افتح تطبيق طلبات على الجهاز اللوحي في المتجر وسجّل الدخول مرة أخرى.", "إذا تغيّرت كلمة المرور مؤخرًا، أدخل كلمة المرور الجديدة في إعدادات الربط."],
        "امسح الرمز لإصلاح الاتصال",
    ),
];

fn ticket(f: &Fixture) -> Ticket {
    let (language, title, labels, values, steps, caption) = *f;
    Ticket {
        language: language.into(),
        direction: if language == "ar" {
            Direction::Rtl
        } else {
            Direction::Ltr
        },
        title: title.into(),
        rows: labels
            .iter()
            .zip(values)
            .map(|(l, v)| (l.to_string(), v.to_string()))
            .collect(),
        steps: steps.iter().map(|s| s.to_string()).collect(),
        qr: Some(URL.into()),
        qr_caption: caption.into(),
        footer: "2026-12-03 18:00 UTC".into(),
    }
}

fn expected_table(language: &str) -> u8 {
    match &language[..2] {
        "pl" => 45,
        "th" => 21,
        "ar" => 50,
        "ja" => 1,
        "zh" | "ko" => 0,
        _ => 16,
    }
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Decoded lines in logical order (RTL lines un-reversed).
fn logical(p: &Printed, dir: Direction) -> Vec<String> {
    p.lines
        .iter()
        .map(|l| {
            if dir == Direction::Rtl {
                rtl_visual_order(l)
            } else {
                l.clone()
            }
        })
        .collect()
}

#[test]
fn every_language_at_both_widths() {
    assert_eq!(FIXTURES.len(), 13);
    for f in FIXTURES {
        for width in WIDTHS {
            let t = ticket(f);
            let cols = width.columns();
            let ctx = format!("{} at {cols}", t.language);
            let plain = plain_text(&t, width);
            for line in plain.lines() {
                assert!(line.width() <= cols, "{ctx}: plain line too wide: {line:?}");
            }
            let rule = "-".repeat(cols);
            assert!(plain.lines().any(|l| l == rule), "{ctx}: no rule");
            assert!(
                plain.lines().any(|l| l.trim_start().starts_with("1. ")),
                "{ctx}: step 1"
            );
            assert!(
                plain.lines().any(|l| l.trim_start().starts_with("2. ")),
                "{ctx}: step 2"
            );
            assert!(plain.contains("[QR] https://"), "{ctx}: QR line");
            let first = plain.lines().next().unwrap();
            let lead = first.len() - first.trim_start().len();
            let title_w = first.trim().width();
            assert!(
                lead.abs_diff((cols - title_w) / 2) <= 1,
                "{ctx}: title not centred: {first:?}"
            );

            let bytes = escpos(&t, width);
            assert_eq!(&bytes[..2], &[0x1B, b'@'], "{ctx}");
            let p = decode(&bytes).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(p.code_tables, vec![expected_table(&t.language)], "{ctx}");
            assert!(p.cut, "{ctx}: no cut");
            assert_eq!(p.qr, vec![URL.to_string()], "{ctx}");
            for line in &p.lines {
                assert!(
                    line.width() <= cols,
                    "{ctx}: printed line too wide: {line:?}"
                );
                assert!(
                    !line.contains('?') || t.language == "es" || t.language == "nl",
                    "{ctx}: {line:?}"
                );
            }
            // Same visible text as the preview, whitespace aside.
            let logical = logical(&p, t.direction);
            let printed = squash(&logical.concat());
            let preview = squash(&plain).replace(&format!("[QR]{URL}"), "");
            assert_eq!(printed, preview, "{ctx}");
            for field in [t.title.as_str(), &t.qr_caption, &t.footer]
                .into_iter()
                .chain(t.rows.iter().flat_map(|(l, v)| [l.as_str(), v.as_str()]))
                .chain(t.steps.iter().map(String::as_str))
            {
                assert!(printed.contains(&squash(field)), "{ctx}: missing {field:?}");
            }
            // The title is what is printed bold, and nothing else.
            let bold: Vec<&str> = p.bold_lines.iter().map(|&i| logical[i].as_str()).collect();
            assert!(!bold.is_empty(), "{ctx}");
            assert_eq!(squash(&bold.concat()), squash(&t.title), "{ctx}");
        }
    }
}

#[test]
fn arabic_is_sent_in_display_order() {
    let t = ticket(FIXTURES.iter().find(|f| f.0 == "ar").unwrap());
    let p = decode(&escpos(&t, Width::Cols42)).unwrap();
    assert_eq!(
        p.lines[0].chars().next(),
        t.title.chars().last(),
        "title reversed"
    );
    assert!(
        p.lines.iter().any(|l| l.contains("(Burger Co)")),
        "Latin run kept, brackets mirrored"
    );
    assert!(p.lines.iter().any(|l| l == "2026-12-03 18:00 UTC"));
    assert!(escpos(&t, Width::Cols42)
        .windows(3)
        .any(|w| w == [0x1B, b'a', 2]));
    let plain = plain_text(&t, Width::Cols42);
    let step = plain.lines().find(|l| l.contains("1. ")).unwrap();
    assert!(
        step.starts_with(' ') && step.trim_start().starts_with("1. "),
        "right-aligned, logical"
    );
}

#[test]
fn rtl_visual_order_is_an_involution() {
    for s in [
        "المتجر: الشارع (Burger Co) 12:30.",
        "1. افتح تطبيق طلبات",
        "abc",
        "",
        "«نص» [x] ب",
    ] {
        assert_eq!(rtl_visual_order(&rtl_visual_order(s)), s);
    }
    assert_eq!(rtl_visual_order("ب (Co)"), "(Co) ب");
    assert_eq!(rtl_visual_order("1. اب"), "با .1");
}

#[test]
fn command_bytes() {
    let t = ticket(&FIXTURES[0]);
    let has = |b: &[u8], pat: &[u8]| b.windows(pat.len()).any(|w| w == pat);
    let b42 = escpos(&t, Width::Cols42);
    let b32 = escpos(&t, Width::Cols32);
    for pat in [
        &[0x1B, b't', 16][..],
        &[0x1B, b'R', 0],
        &[0x1B, b'a', 1],
        &[0x1B, b'E', 1],
        &[0x1D, b'!', 1],
        &[0x1B, b'E', 0],
        &[0x1B, b'a', 0],
        &[0x1D, b'(', b'k', 4, 0, 49, 65, 50, 0],
        &[0x1D, b'(', b'k', 3, 0, 49, 69, 49],
        &[0x1D, b'(', b'k', 3, 0, 49, 81, 48],
        &[0x1D, b'V', 66, 0],
    ] {
        assert!(has(&b42, pat), "missing {pat:02X?}");
    }
    assert!(has(&b42, &[0x1D, b'(', b'k', 3, 0, 49, 67, 6]));
    assert!(has(&b32, &[0x1D, b'(', b'k', 3, 0, 49, 67, 5]));
    let n = URL.len() + 3;
    assert!(has(&b42, &[0x1D, b'(', b'k', n as u8, 0, 49, 80, 48]));
    assert!(!has(&b42, &[0x1D, b'!', 0x11]), "no double width");
    let ja = escpos(
        &ticket(FIXTURES.iter().find(|f| f.0 == "ja").unwrap()),
        Width::Cols32,
    );
    assert!(has(&ja, &[0x1C, b'C', 1, 0x1C, b'&']) && has(&ja, &[0x1C, b'.']));
    let ko = escpos(
        &ticket(FIXTURES.iter().find(|f| f.0 == "ko").unwrap()),
        Width::Cols32,
    );
    assert!(has(&ko, &[0x1B, b'R', 13]) && has(&ko, &[0x1C, b'&']));
}

#[test]
fn long_unbreakable_word_wraps() {
    let word = "https://example.com/reconnect/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(word.len(), 70);
    for f in FIXTURES {
        let mut t = ticket(f);
        t.rows.push(("URL".into(), word.into()));
        t.steps.push(word.into());
        t.title = format!("{} {word}", t.title);
        for width in WIDTHS {
            let plain = plain_text(&t, width);
            assert!(
                plain.lines().all(|l| l.width() <= width.columns()),
                "{plain}"
            );
            let p = decode(&escpos(&t, width)).unwrap();
            let printed = squash(&logical(&p, t.direction).concat());
            assert!(
                printed.matches(word).count() >= 3,
                "{}: {printed}",
                t.language
            );
        }
    }
}

#[test]
fn no_steps_and_no_qr() {
    for f in FIXTURES {
        let mut t = ticket(f);
        t.steps.clear();
        t.qr = None;
        for width in WIDTHS {
            let plain = plain_text(&t, width);
            assert!(!plain.contains("[QR]") && !plain.contains("1. "));
            assert!(
                !plain.contains(t.qr_caption.as_str()),
                "caption only with a QR"
            );
            let p = decode(&escpos(&t, width)).unwrap();
            assert!(p.qr.is_empty() && p.cut);
        }
    }
    let empty = Ticket {
        language: String::new(),
        direction: Direction::Ltr,
        title: String::new(),
        rows: vec![],
        steps: vec![],
        qr: None,
        qr_caption: String::new(),
        footer: String::new(),
    };
    assert_eq!(plain_text(&empty, Width::Cols32), "");
    let p = decode(&escpos(&empty, Width::Cols32)).unwrap();
    assert!(p.cut && p.lines.iter().all(String::is_empty));
}

#[test]
fn unrepresentable_and_control_characters_become_question_marks() {
    let mut t = ticket(&FIXTURES[0]);
    t.rows.push((
        "Note".into(),
        "burger 🍔 Ω e\u{301} \u{1b}@ 配達 \u{202F}!".into(),
    ));
    t.language = "en-GB".into();
    let bytes = escpos(&t, Width::Cols32);
    let p = decode(&bytes).unwrap();
    assert_eq!(p.code_tables, vec![16], "no second ESC @ / ESC t injected");
    let text = p.lines.concat();
    assert!(text.contains("burger ? ? e? ?@ ?? \u{A0}!"), "{text}");
    let plain = plain_text(&t, Width::Cols32);
    assert!(!plain.contains('\u{1b}'));
    // Korean: backslash cannot print (0x5C is the won sign there), the won sign can.
    let mut ko = ticket(FIXTURES.iter().find(|f| f.0 == "ko").unwrap());
    ko.footer = "C:\\ ₩5000 é".into();
    let p = decode(&escpos(&ko, Width::Cols42)).unwrap();
    assert!(p.lines.iter().any(|l| l == "C:? ₩5000 ?"), "{:?}", p.lines);
}

#[test]
fn cjk_and_thai_line_breaking() {
    for lang in ["ja", "zh", "th"] {
        let t = ticket(FIXTURES.iter().find(|f| f.0 == lang).unwrap());
        for width in WIDTHS {
            for line in plain_text(&t, width).lines() {
                let first = line.trim_start().chars().next();
                assert!(!matches!(first, Some('。' | '、' | '，')), "{lang}: {line}");
                if let Some(c) = first {
                    assert_ne!(
                        c.width(),
                        Some(0),
                        "{lang}: line starts with a mark: {line}"
                    );
                }
            }
        }
    }
    // Thai: marks stay with their base; a line break never splits a cluster.
    let lines = wrap("ที่แท็บเล็ตเครื่องนี้", 5, Metric::Display);
    assert!(
        lines.len() > 1 && lines.iter().all(|l| l.width() <= 5),
        "{lines:?}"
    );
    assert_eq!(lines.concat(), "ที่แท็บเล็ตเครื่องนี้");
    // Latin wraps at spaces.
    assert_eq!(
        wrap("aaa bbb  ccc", 7, Metric::Display),
        vec!["aaa bbb", "ccc"]
    );
    assert_eq!(
        wrap("abcdefghij", 4, Metric::Display),
        vec!["abcd", "efgh", "ij"]
    );
}

#[test]
fn decode_rejects_unknown_and_truncated_commands() {
    let ok = escpos(&ticket(&FIXTURES[0]), Width::Cols42);
    assert!(decode(&ok).is_ok());
    let cases: [&[u8]; 7] = [
        &[0x1B, b'@', 0x10, 0x04, 0x01], // DLE EOT: not emitted
        &[0x1B, b'@', 0x1B, b'Z', 0],    // ESC Z: unknown
        &[0x1B, b'@', 0x1D, b'(', b'k', 3, 0, 49, 82, 48], // QR fn 182
        &[0x1B, b'@', 0x1B, b't'],       // truncated
        &[0x1B, b'@', 0x1B, b'R', 7],    // international set not modelled
        &[0x1B, b'@', 0x1B, b't', 16, 0x81], // undefined in WPC1252
        &[0x1B, b'@', 0x1D, b'(', b'k', 3, 0, 49, 81, 48], // print without data
    ];
    for c in cases {
        assert!(decode(c).is_err(), "{c:02X?}");
    }
    assert!(matches!(
        decode(&[0x10]),
        Err(DecodeError::UnknownCommand { at: 0, .. })
    ));
    let mut bad = ok.clone();
    bad.insert(bad.len() / 2, 0x07);
    assert!(decode(&bad).is_err());
}
