"""The words of the end user's pages (sign-in, consent, waiting, errors) in English, Latvian and
Vietnamese, and the choice among them: the authorization request's ``ui_locales`` (OpenID Connect
Core §3.1.2.1) first, then the language the browser asks for (``Accept-Language``), then English.

Every text sits with its translations under one key, so a missing translation shows in review
and in ``tests/test_page_text.py``; placeholders are ``str.format`` fields filled with values the
page escapes itself."""

from __future__ import annotations

from dataclasses import dataclass

from remotesign.core.scopes import IDENTIFY, IDENTIFY_AGE, IDENTITY_PROFILE, USE_DEVICE, USE_SERVER, age_threshold

LOCALES = ("en", "lv", "vi")
DEFAULT_LOCALE = "en"
#: the cookie that keeps the language chosen at the authorization endpoint for the later pages
LOCALE_COOKIE = "rs_lang"

TEXTS: dict[str, tuple[str, str, str]] = {  # key: (en, lv, vi)
    "sign_in": ("Sign in", "Pieteikties", "Đăng nhập"),
    "consent": ("Consent", "Piekrišana", "Chấp thuận"),
    "asks_to": ("{client} asks to:", "{client} lūdz atļauju:", "{client} yêu cầu:"),
    "documents": ("Documents to be signed", "Parakstāmie dokumenti", "Tài liệu cần ký"),
    "verification_code": ("Verification code", "Pārbaudes kods", "Mã xác minh"),
    "verification_hint": ("If the application shows a code for these documents, it must be this one.",
                          "Ja lietotne šiem dokumentiem rāda kodu, tam jābūt tieši šim.",
                          "Nếu ứng dụng hiển thị mã cho các tài liệu này, mã đó phải trùng với mã này."),
    "digests_summary": ("Digests summary", "Kontrolsummu kopsavilkums", "Tóm tắt giá trị băm"),
    "algorithm": ("Algorithm", "Algoritms", "Thuật toán"),
    "user_name": ("User name", "Lietotājvārds", "Tên đăng nhập"),
    "password": ("Password", "Parole", "Mật khẩu"),
    "cancel": ("Cancel", "Atcelt", "Hủy"),
    "approve": ("Approve", "Apstiprināt", "Đồng ý"),
    "signed_in_as": ("Signed in as {name} ({username}).", "Pieteicies kā {name} ({username}).",
                     "Đã đăng nhập: {name} ({username})."),
    "signing_pin": ("Signing PIN", "Parakstīšanas PIN", "Mã PIN ký"),
    "pin_and_otp": ("Enter your signing PIN and a one-time code.",
                    "Ievadiet parakstīšanas PIN un vienreizējo kodu.",
                    "Nhập mã PIN ký và mã dùng một lần."),
    "pin_or_otp": ("Enter your signing PIN, or a one-time code instead.",
                   "Ievadiet parakstīšanas PIN vai tā vietā vienreizējo kodu.",
                   "Nhập mã PIN ký, hoặc mã dùng một lần thay thế."),
    "otp_sent": ("A one-time code was sent to {to}.", "Vienreizējais kods nosūtīts uz {to}.",
                 "Mã dùng một lần đã được gửi đến {to}."),
    "otp": ("One-time code", "Vienreizējais kods", "Mã dùng một lần"),
    "send_new_code": ("Send me a new code", "Sūtīt jaunu kodu", "Gửi cho tôi mã mới"),
    "send_code": ("Send me a code", "Sūtīt kodu", "Gửi mã cho tôi"),
    "approve_on_device": ("Approve on my device", "Apstiprināt savā ierīcē", "Phê duyệt trên thiết bị của tôi"),
    "sign_identity": ("Sign identity", "Parakstīšanas identitāte", "Danh tính ký"),
    "choose_identity": ("Choose the sign identity", "Izvēlieties parakstīšanas identitāti", "Chọn danh tính ký"),
    "no_identity": ("You have no usable sign identity.", "Jums nav izmantojamas parakstīšanas identitātes.",
                    "Bạn không có danh tính ký nào dùng được."),
    "name": ("Name", "Vārds", "Tên"),
    "issued_by": ("Issued by", "Izdevējs", "Cấp bởi"),
    "serial_number": ("Serial number", "Sērijas numurs", "Số sê-ri"),
    "valid": ("Valid", "Derīgs", "Hiệu lực"),
    "valid_range": ("{start} to {end}", "no {start} līdz {end}", "từ {start} đến {end}"),
    "labels": ("Labels", "Etiķetes", "Nhãn"),
    "none": ("none", "nav", "không có"),
    "description": ("Description", "Apraksts", "Mô tả"),
    "status": ("Status", "Statuss", "Trạng thái"),
    "certificate": ("Certificate", "Sertifikāts", "Chứng thư"),
    "unreadable": ("cannot be read", "nevar nolasīt", "không đọc được"),
    "waiting_title": ("Waiting for your device", "Gaida jūsu ierīci", "Đang chờ thiết bị của bạn"),
    "open_app": ("Open the approval app on your device and confirm the request there.",
                 "Atveriet apstiprināšanas lietotni savā ierīcē un apstipriniet pieprasījumu tajā.",
                 "Mở ứng dụng phê duyệt trên thiết bị của bạn và xác nhận yêu cầu tại đó."),
    "checks_again": ("This page checks again every few seconds.",
                     "Šī lapa pārbauda vēlreiz ik pēc dažām sekundēm.",
                     "Trang này tự kiểm tra lại sau vài giây."),
    "check_now": ("Check now", "Pārbaudīt tagad", "Kiểm tra ngay"),
    "cannot_go_on": ("This request cannot go on", "Šo pieprasījumu nevar turpināt",
                     "Không thể tiếp tục yêu cầu này"),
    "start_again": ("Go back to the application you came from and start again.",
                    "Atgriezieties lietotnē, no kuras atnācāt, un sāciet no jauna.",
                    "Hãy quay lại ứng dụng bạn đã dùng và bắt đầu lại."),
    "wrong_login": ("Wrong user name or password, or the account is locked. If it is locked, wait or reset it "
                    "with the link your service sent you.",
                    "Nepareizs lietotājvārds vai parole, vai arī konts ir bloķēts. Ja tas ir bloķēts, uzgaidiet "
                    "vai atjaunojiet to ar saiti, ko jums nosūtīja pakalpojums.",
                    "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đã bị khóa. Nếu bị khóa, hãy chờ hoặc đặt "
                    "lại bằng liên kết mà dịch vụ đã gửi cho bạn."),
    "too_many_logins": ("Too many failed sign-ins from your network or for this application; try again later.",
                        "Pārāk daudz neveiksmīgu pieteikšanās mēģinājumu no jūsu tīkla vai šai lietotnei; "
                        "mēģiniet vēlāk.",
                        "Quá nhiều lần đăng nhập không thành công từ mạng của bạn hoặc cho ứng dụng này; "
                        "hãy thử lại sau."),
    "too_many_pins": ("Too many wrong PINs from your network; try again later.",
                      "Pārāk daudz nepareizu PIN no jūsu tīkla; mēģiniet vēlāk.",
                      "Quá nhiều mã PIN sai từ mạng của bạn; hãy thử lại sau."),
    "wrong_pin": ("Wrong PIN, {remaining} tries left.", "Nepareizs PIN, atlikuši mēģinājumi: {remaining}.",
                  "Sai mã PIN, còn {remaining} lần thử."),
    "wrong_pin_one": ("Wrong PIN, 1 try left.", "Nepareizs PIN, atlicis viens mēģinājums.",
                      "Sai mã PIN, còn 1 lần thử."),
    "pin_locked_until": ("The PIN is locked until {until} after too many wrong tries; try again later.",
                         "PIN ir bloķēts līdz {until} pēc pārāk daudziem nepareiziem mēģinājumiem; mēģiniet vēlāk.",
                         "Mã PIN bị khóa đến {until} do nhập sai quá nhiều lần; hãy thử lại sau."),
    "pin_locked": ("The PIN is locked after too many wrong tries; try again later.",
                   "PIN ir bloķēts pēc pārāk daudziem nepareiziem mēģinājumiem; mēģiniet vēlāk.",
                   "Mã PIN bị khóa do nhập sai quá nhiều lần; hãy thử lại sau."),
    "pin_blocked": ("The PIN is blocked after too many wrong tries. Choose a new one with the reset link your "
                    "service sends you, or ask the service operator.",
                    "PIN ir bloķēts pēc pārāk daudziem nepareiziem mēģinājumiem. Izvēlieties jaunu ar atjaunošanas "
                    "saiti, ko nosūta jūsu pakalpojums, vai vērsieties pie pakalpojuma operatora.",
                    "Mã PIN bị chặn do nhập sai quá nhiều lần. Hãy chọn mã mới bằng liên kết đặt lại mà dịch vụ "
                    "gửi cho bạn, hoặc liên hệ nhà vận hành dịch vụ."),
    "no_auth_server": ("There is no authorization server named {name}.",
                       "Nav autorizācijas servera ar nosaukumu {name}.",
                       "Không có máy chủ ủy quyền nào tên {name}."),
    "not_found": ("Not found", "Nav atrasts", "Không tìm thấy"),
    "other_site": ("This form was sent from another site; start again from the application.",
                   "Šī veidlapa tika nosūtīta no citas vietnes; sāciet no jauna lietotnē.",
                   "Biểu mẫu này được gửi từ một trang khác; hãy bắt đầu lại từ ứng dụng."),
    "something_wrong": ("Something went wrong", "Kaut kas nogāja greizi", "Đã xảy ra sự cố"),
    "internal_error": ("The service could not complete this step; try again later.",
                       "Pakalpojums nevarēja pabeigt šo soli; mēģiniet vēlāk.",
                       "Dịch vụ không thể hoàn tất bước này; hãy thử lại sau."),
    "no_idp": ("There is no identity provider named {name}.", "Nav identitātes nodrošinātāja ar nosaukumu {name}.",
               "Không có nhà cung cấp danh tính nào tên {name}."),
    "signed_out": ("You are signed out", "Jūs esat izrakstījies", "Bạn đã đăng xuất"),
    "pages_closed": ("Every sign-in page open in this browser has been closed.",
                     "Visas šajā pārlūkprogrammā atvērtās pieteikšanās lapas ir aizvērtas.",
                     "Mọi trang đăng nhập đang mở trong trình duyệt này đã được đóng."),
    "continue": ("Continue", "Turpināt", "Tiếp tục"),
    "close_window": ("You can close this window.", "Varat aizvērt šo logu.", "Bạn có thể đóng cửa sổ này."),
    # the reasons of core errors shown to the end user (CoreError.reason, ConsentError.reason)
    "error:page_unknown": ("This sign-in page is unknown or was opened in another browser.",
                           "Šī pieteikšanās lapa nav zināma vai tika atvērta citā pārlūkprogrammā.",
                           "Trang đăng nhập này không xác định hoặc đã được mở trong trình duyệt khác."),
    "error:page_expired": ("This sign-in page has expired; start again from the application.",
                           "Šīs pieteikšanās lapas derīguma termiņš ir beidzies; sāciet no jauna lietotnē.",
                           "Trang đăng nhập này đã hết hạn; hãy bắt đầu lại từ ứng dụng."),
    "error:step_done": ("This step is already done; start again from the application.",
                        "Šis solis jau ir paveikts; sāciet no jauna lietotnē.",
                        "Bước này đã hoàn tất; hãy bắt đầu lại từ ứng dụng."),
    "error:no_pin": ("You have no signing PIN; ask for a one-time code instead.",
                     "Jums nav parakstīšanas PIN; tā vietā pieprasiet vienreizējo kodu.",
                     "Bạn không có mã PIN ký; hãy yêu cầu mã dùng một lần thay thế."),
    "error:otp_not_asked": ("This request is approved with the PIN.", "Šo pieprasījumu apstiprina ar PIN.",
                            "Yêu cầu này được phê duyệt bằng mã PIN."),
    "error:otp_too_many_for_request": ("Too many codes were sent for this request; start again from the application.",
                                       "Šim pieprasījumam nosūtīts pārāk daudz kodu; sāciet no jauna lietotnē.",
                                       "Đã gửi quá nhiều mã cho yêu cầu này; hãy bắt đầu lại từ ứng dụng."),
    "error:otp_wait": ("Wait {seconds} seconds before asking for another code.",
                       "Pirms prasāt jaunu kodu, uzgaidiet {seconds} sekundes.",
                       "Hãy chờ {seconds} giây trước khi yêu cầu mã khác."),
    "error:otp_void": ("The one-time code is wrong, expired or used up; ask for a new one.",
                       "Vienreizējais kods ir nepareizs, novecojis vai jau izmantots; pieprasiet jaunu.",
                       "Mã dùng một lần sai, đã hết hạn hoặc đã dùng hết; hãy yêu cầu mã mới."),
    "error:otp_wrong": ("Wrong one-time code, {left} tries left.",
                        "Nepareizs vienreizējais kods, atlikuši mēģinājumi: {left}.",
                        "Sai mã dùng một lần, còn {left} lần thử."),
    "error:otp_wrong_one": ("Wrong one-time code, 1 try left.", "Nepareizs vienreizējais kods, atlicis viens mēģinājums.",
                            "Sai mã dùng một lần, còn 1 lần thử."),
    "error:otp_not_sent": ("The one-time code could not be sent; try again later.",
                           "Vienreizējo kodu neizdevās nosūtīt; mēģiniet vēlāk.",
                           "Không gửi được mã dùng một lần; hãy thử lại sau."),
    "error:no_otp_channel": ("The service has no way to send you a one-time code.",
                             "Pakalpojumam nav iespēju nosūtīt jums vienreizējo kodu.",
                             "Dịch vụ không có cách nào gửi mã dùng một lần cho bạn."),
    "error:choose_identity": ("Choose the sign identity to sign with.",
                              "Izvēlieties parakstīšanas identitāti, ar kuru parakstīt.",
                              "Hãy chọn danh tính ký để ký."),
    "error:unknown_identity": ("Unknown sign identity.", "Nezināma parakstīšanas identitāte.",
                               "Danh tính ký không xác định."),
    "error:identity_disabled": ("This sign identity is disabled.", "Šī parakstīšanas identitāte ir atspējota.",
                                "Danh tính ký này đã bị vô hiệu hóa."),
    "error:user_disabled": ("Your account is disabled; ask the service operator.",
                            "Jūsu konts ir atspējots; vērsieties pie pakalpojuma operatora.",
                            "Tài khoản của bạn đã bị vô hiệu hóa; hãy liên hệ nhà vận hành dịch vụ."),
    "error:certificate_expired": ("The sign identity's certificate is not valid now.",
                                  "Parakstīšanas identitātes sertifikāts pašlaik nav derīgs.",
                                  "Chứng thư của danh tính ký hiện không còn hiệu lực."),
    "error:certificate_revoked": ("The sign identity's certificate is revoked.",
                                  "Parakstīšanas identitātes sertifikāts ir atsaukts.",
                                  "Chứng thư của danh tính ký đã bị thu hồi."),
    "error:no_device": ("You have no registered approval device.", "Jums nav reģistrētas apstiprināšanas ierīces.",
                        "Bạn chưa đăng ký thiết bị phê duyệt nào."),
    "error:invalid_client": ("The application (client_id) is unknown or disabled.", "Lietotne (client_id) nav zināma vai ir atspējota.",
                             "Ứng dụng (client_id) không xác định hoặc đã bị vô hiệu hóa."),
    "error:invalid_redirect_uri": ("The application's return address (redirect_uri) is not registered with this service.",
                                   "Lietotnes atgriešanās adrese (redirect_uri) šajā pakalpojumā nav reģistrēta.",
                                   "Địa chỉ quay lại của ứng dụng (redirect_uri) chưa được đăng ký với dịch vụ này."),
    "operated_by": ("Operated by {operator}", "Pakalpojumu sniedz {operator}", "Vận hành bởi {operator}"),
    # what the relying party asks for (remotesign.core.scopes)
    "scope:" + IDENTIFY: ("see your name and personal code", "redzēt jūsu vārdu un personas kodu",
                          "xem tên và mã số cá nhân của bạn"),
    "scope:" + IDENTIFY_AGE: ("see your name, personal code and age", "redzēt jūsu vārdu, personas kodu un vecumu",
                              "xem tên, mã số cá nhân và tuổi của bạn"),
    "scope:age": ("see your name, personal code and whether you are at least {years} years old",
                  "redzēt jūsu vārdu, personas kodu un to, vai jums ir vismaz {years} gadi",
                  "xem tên, mã số cá nhân và việc bạn đã đủ {years} tuổi hay chưa"),
    "scope:" + IDENTITY_PROFILE: ("see your sign identities", "redzēt jūsu parakstīšanas identitātes",
                                  "xem các danh tính ký của bạn"),
    "scope:" + USE_SERVER: ("sign with your server-held key the documents shown (once)",
                            "vienreiz parakstīt parādītos dokumentus ar jūsu serverī glabāto atslēgu",
                            "ký một lần các tài liệu hiển thị bằng khóa của bạn lưu trên máy chủ"),
    "scope:" + USE_DEVICE: ("send signature requests to your approval device",
                            "sūtīt parakstīšanas pieprasījumus uz jūsu apstiprināšanas ierīci",
                            "gửi yêu cầu ký đến thiết bị phê duyệt của bạn"),
}


@dataclass(frozen=True)
class PageText:
    """The texts of one language."""

    locale: str = DEFAULT_LOCALE

    def __call__(self, key: str, **values: object) -> str:
        text = TEXTS[key][LOCALES.index(self.locale)]
        return text.format(**values) if values else text

    def error(self, exc: Exception) -> str:
        """A core error in this language, by its ``reason`` (core.errors); its own English message
        when no page text says it (messages for integrators rather than for the signer)."""
        key = f"error:{getattr(exc, 'reason', '')}"
        if key in TEXTS:
            try:
                return TEXTS[key][LOCALES.index(self.locale)].format(**getattr(exc, "values", {}))
            except (KeyError, IndexError, ValueError):  # a text that names a value the error lacks
                pass
        return str(getattr(exc, "message", exc))

    def scope(self, scope: str) -> str:
        """What granting ``scope`` lets the relying party do, in this language."""
        years = age_threshold(scope)
        if years is not None:
            return self("scope:age", years=years)
        return self(f"scope:{scope}") if f"scope:{scope}" in TEXTS else scope


ENGLISH = PageText()


def _tags(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, most wanted first (RFC 9110 §12.5.4)."""
    weighted = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def _supported(tag: str) -> str | None:
    primary = tag.lower().split("-")[0]
    return primary if primary in LOCALES else None


def choose_locale(ui_locales: str | None = None, accept_language: str | None = None,
                  remembered: str | None = None) -> str:
    """The page language: the first supported of ``ui_locales`` (space-separated, in order of
    preference), else the one remembered for this request, else the browser's, else English."""
    for tag in (ui_locales or "").split()[:10]:
        if _supported(tag):
            return _supported(tag)  # type: ignore[return-value]
    if remembered in LOCALES:
        return remembered  # type: ignore[return-value]
    for tag in _tags(accept_language or ""):
        if _supported(tag):
            return _supported(tag)  # type: ignore[return-value]
    return DEFAULT_LOCALE


__all__ = ["ENGLISH", "LOCALES", "LOCALE_COOKIE", "PageText", "TEXTS", "choose_locale"]
