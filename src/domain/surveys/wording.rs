//! What a survey says, in each of its languages: the page, the thank-you
//! and error pages, and the invitation e-mail share these words.

use entity::enums::SurveyLocale;

/// The words of one language.
pub struct Wording {
    /// The `lang` of the page and the e-mail.
    pub lang: &'static str,
    /// "How likely are you to recommend {employer} to a friend as a place
    /// to work?", before and after the employer's name.
    pub question: (&'static str, &'static str),
    /// What the touchpoint line says before the touchpoint's name.
    pub about: &'static str,
    pub title: &'static str,
    /// The end labels of the 0-10 scale.
    pub not_likely: &'static str,
    pub very_likely: &'static str,
    pub comment_label: &'static str,
    pub comment_hint: &'static str,
    pub submit: &'static str,
    /// "{employer} uses your answer as its privacy notice says." and the
    /// link's text.
    pub privacy: &'static str,
    pub privacy_link: &'static str,
    /// Said of confidential and of anonymous answers.
    pub confidential: &'static str,
    pub anonymous: &'static str,
    pub choose_score: &'static str,
    pub comment_too_long: &'static str,
    pub thanks_title: &'static str,
    pub thanks_promoter: &'static str,
    pub thanks_passive: &'static str,
    pub thanks_detractor: &'static str,
    pub answered_title: &'static str,
    pub answered_body: &'static str,
    pub closed_title: &'static str,
    pub closed_body: &'static str,
    pub unknown_title: &'static str,
    pub unknown_body: &'static str,
    pub too_many_title: &'static str,
    pub too_many_body: &'static str,
    pub failure_title: &'static str,
    pub failure_body: &'static str,
    pub bad_form_title: &'static str,
    pub bad_form_body: &'static str,
    /// The e-mail: subject (before the employer's name), greeting, the
    /// line before the eleven numbers, the line before the plain link.
    pub mail_subject: &'static str,
    pub mail_greeting: &'static str,
    pub mail_pick: &'static str,
    pub mail_link: &'static str,
    pub mail_expires: &'static str,
}

const EN: Wording = Wording {
    lang: "en",
    question: ("How likely are you to recommend ", " to a friend as a place to work?"),
    about: "About: ",
    title: "A quick question",
    not_likely: "Not at all likely",
    very_likely: "Extremely likely",
    comment_label: "Anything you would like to tell us? (optional)",
    comment_hint: "At most 1000 characters.",
    submit: "Send my answer",
    privacy: "Your answer is used as the privacy notice says.",
    privacy_link: "Privacy notice",
    confidential: "Your answer is linked to your application.",
    anonymous: "Your answer is anonymous: it is stored without your name or any link to you.",
    choose_score: "Choose a number from 0 to 10.",
    comment_too_long: "The comment is too long: at most 1000 characters.",
    thanks_title: "Thank you",
    thanks_promoter: "We are glad it went well, and thank you for taking the time to tell us.",
    thanks_passive: "Thank you for your answer. We will use it to make the experience better.",
    thanks_detractor: "Thank you for being honest with us. We are sorry it fell short, and we will use what you told us to do better.",
    answered_title: "Already answered",
    answered_body: "This survey has already been answered. Thank you.",
    closed_title: "This survey is closed",
    closed_body: "This survey link has expired or was withdrawn, and takes no more answers.",
    unknown_title: "Survey not found",
    unknown_body: "This survey link is not valid. Check that the whole link was copied.",
    too_many_title: "Too many requests",
    too_many_body: "Please wait a moment, then try again.",
    failure_title: "Something went wrong",
    failure_body: "Your answer was not recorded. Please try again in a few minutes.",
    bad_form_title: "The answer could not be read",
    bad_form_body: "Please open the survey link again and answer there.",
    mail_subject: "A quick question about ",
    mail_greeting: "Hello,",
    mail_pick: "Pick a number to answer (0 = not at all likely, 10 = extremely likely):",
    mail_link: "Or open the survey:",
    mail_expires: "The link works until",
};

const VI: Wording = Wording {
    lang: "vi",
    question: (
        "Bạn có sẵn lòng giới thiệu ",
        " là nơi làm việc cho bạn bè không?",
    ),
    about: "Về: ",
    title: "Một câu hỏi ngắn",
    not_likely: "Hoàn toàn không",
    very_likely: "Chắc chắn có",
    comment_label: "Bạn có muốn chia sẻ thêm điều gì không? (không bắt buộc)",
    comment_hint: "Tối đa 1000 ký tự.",
    submit: "Gửi câu trả lời",
    privacy: "Câu trả lời của bạn được sử dụng theo thông báo quyền riêng tư.",
    privacy_link: "Thông báo quyền riêng tư",
    confidential: "Câu trả lời của bạn được gắn với hồ sơ ứng tuyển của bạn.",
    anonymous: "Câu trả lời của bạn là ẩn danh: được lưu mà không có tên hay bất kỳ liên kết nào đến bạn.",
    choose_score: "Hãy chọn một số từ 0 đến 10.",
    comment_too_long: "Nhận xét quá dài: tối đa 1000 ký tự.",
    thanks_title: "Cảm ơn bạn",
    thanks_promoter: "Chúng tôi rất vui vì trải nghiệm của bạn tốt đẹp, và cảm ơn bạn đã dành thời gian chia sẻ.",
    thanks_passive: "Cảm ơn câu trả lời của bạn. Chúng tôi sẽ dùng nó để cải thiện trải nghiệm.",
    thanks_detractor: "Cảm ơn bạn đã thẳng thắn. Chúng tôi rất tiếc vì trải nghiệm chưa tốt, và sẽ dùng góp ý của bạn để làm tốt hơn.",
    answered_title: "Đã trả lời",
    answered_body: "Khảo sát này đã được trả lời. Cảm ơn bạn.",
    closed_title: "Khảo sát đã đóng",
    closed_body: "Liên kết khảo sát này đã hết hạn hoặc đã bị thu hồi, và không nhận thêm câu trả lời.",
    unknown_title: "Không tìm thấy khảo sát",
    unknown_body: "Liên kết khảo sát không hợp lệ. Hãy kiểm tra rằng bạn đã sao chép toàn bộ liên kết.",
    too_many_title: "Quá nhiều yêu cầu",
    too_many_body: "Vui lòng đợi một lát rồi thử lại.",
    failure_title: "Đã xảy ra lỗi",
    failure_body: "Câu trả lời của bạn chưa được ghi nhận. Vui lòng thử lại sau vài phút.",
    bad_form_title: "Không đọc được câu trả lời",
    bad_form_body: "Vui lòng mở lại liên kết khảo sát và trả lời tại đó.",
    mail_subject: "Một câu hỏi ngắn về ",
    mail_greeting: "Xin chào,",
    mail_pick: "Chọn một số để trả lời (0 = hoàn toàn không, 10 = chắc chắn có):",
    mail_link: "Hoặc mở khảo sát:",
    mail_expires: "Liên kết có hiệu lực đến",
};

impl Wording {
    pub fn of(locale: SurveyLocale) -> &'static Wording {
        match locale {
            SurveyLocale::En => &EN,
            SurveyLocale::Vi => &VI,
        }
    }

    /// The question about `employer`.
    pub fn question_about(&self, employer: &str) -> String {
        format!("{}{employer}{}", self.question.0, self.question.1)
    }
}
